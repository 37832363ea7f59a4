// SHA-256 of many independent messages at once, sixteen at a time, one per 32-bit lane of the
// AVX-512 registers (multi-buffer hashing). Why: SHA-NI runs one message's rounds back to back,
// each waiting for the last (about 1 GB/s per core here); sixteen messages side by side keep the
// vector units busy instead (about 1.6 GB/s per core here). Each lane takes the next message as
// soon as its own is done; once the batch runs out and too few lanes are left busy to beat one
// stream, their messages are finished one by one from the state they reached, with our own
// one-block compression (SHA-NI where the CPU has it, else plain C): OpenSSL's public API cannot
// start from a midway state, and its SHA256_CTX fields are not an interface. Batches too small
// for the lanes, or a CPU without AVX-512, go to OpenSSL's SHA-256 through its public API.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sha256_lanes.h"

#include <openssl/sha.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_LANES 1
#else
#define HAVE_LANES 0
#endif

#define LANES 16
// Below this many busy lanes (and nothing left to start), the vector step does less than one
// SHA-NI stream would: hand the rest to OpenSSL.
#define MIN_BUSY_LANES 9

// FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the cube roots of the
// first 64 primes.
static const uint32_t K[64] __attribute__((aligned(64))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
// FIPS 180-4 section 5.3.3: the first 32 bits of the fractional parts of the square roots of the
// first 8 primes.
static const uint32_t IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

static int use_lanes;

// `blocks` consecutive 64-byte blocks into one message's state.
typedef void (*compress1_fn)(uint32_t st[8], const uint8_t* data, size_t blocks);
static void compress1_c(uint32_t st[8], const uint8_t* data, size_t blocks);
static compress1_fn compress1 = compress1_c;
#if HAVE_LANES
static void compress1_shani(uint32_t st[8], const uint8_t* data, size_t blocks);
#endif

void sha256_batch_init(void) {
#if HAVE_LANES
  use_lanes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  unsigned a, b, c, d;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)) && __builtin_cpu_supports("sse4.1")) compress1 = compress1_shani;  // CPUID.7.0:EBX.SHA
#endif
}

int sha256_set_engine(const char* name) {
  if (strcmp(name, "c") == 0) {
    compress1 = compress1_c;
    return 1;
  }
#if HAVE_LANES
  unsigned a, b, c, d;
  if (strcmp(name, "sha-ni") == 0 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29))) {
    compress1 = compress1_shani;
    return 1;
  }
#endif
  return 0;
}

const char* sha256_engine(void) {
#if HAVE_LANES
  if (compress1 == compress1_shani) return "sha-ni";
#endif
  return "c";
}

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t get_be32(const uint8_t* p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void compress_block_c(uint32_t st[8], const uint8_t* block) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) w[i] = get_be32(block + 4 * i);
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  st[0] += a;
  st[1] += b;
  st[2] += c;
  st[3] += d;
  st[4] += e;
  st[5] += f;
  st[6] += g;
  st[7] += h;
}

// FIPS 180-4 section 6.2.2.
static void compress1_c(uint32_t st[8], const uint8_t* data, size_t blocks) {
  for (; blocks > 0; blocks--, data += 64) compress_block_c(st, data);
}

#if HAVE_LANES
// The same with the SHA extensions: four rounds per pair of sha256rnds2, the schedule with
// sha256msg1/msg2 (Intel's "SHA extensions" paper, 2013). The state is kept as ABEF/CDGH.
__attribute__((target("sha,sse4.1"))) static void compress1_shani(uint32_t st[8], const uint8_t* data, size_t blocks) {
  const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i*)&st[0]), 0xb1);  // CDAB
  __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i*)&st[4]), 0x1b);   // EFGH
  __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);                                         // ABEF
  s1 = _mm_blend_epi16(s1, tmp, 0xf0);                                              // CDGH
  for (; blocks > 0; blocks--, data += 64) {
    const __m128i abef = s0, cdgh = s1;
    __m128i w[4];
    for (int i = 0; i < 4; i++) w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i*)(data + 16 * i)), swap);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
      if (i >= 4) {
        // Words 4i..4i+3 from the four groups before: w[i&3] holds group i-4 until replaced.
        __m128i x = _mm_add_epi32(_mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]), _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
        w[i & 3] = _mm_sha256msg2_epu32(x, w[(i + 3) & 3]);
      }
      __m128i m = _mm_add_epi32(w[i & 3], _mm_load_si128((const __m128i*)&K[4 * i]));
      s1 = _mm_sha256rnds2_epu32(s1, s0, m);
      s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(m, 0x0e));
    }
    s0 = _mm_add_epi32(s0, abef);
    s1 = _mm_add_epi32(s1, cdgh);
  }
  tmp = _mm_shuffle_epi32(s0, 0x1b);        // FEBA
  s1 = _mm_shuffle_epi32(s1, 0xb1);         // DCHG
  s0 = _mm_blend_epi16(tmp, s1, 0xf0);      // DCBA
  s1 = _mm_alignr_epi8(s1, tmp, 8);         // HGFE
  _mm_storeu_si128((__m128i*)&st[0], s0);
  _mm_storeu_si128((__m128i*)&st[4], s1);
}
#endif

int sha256_batch_lanes(void) { return use_lanes; }

static void put_be32(uint8_t* out, uint32_t v) {
  out[0] = (uint8_t)(v >> 24);
  out[1] = (uint8_t)(v >> 16);
  out[2] = (uint8_t)(v >> 8);
  out[3] = (uint8_t)v;
}

static void openssl_one(const sha256_msg_t* m, uint8_t* digest) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, m->piece[0], m->length[0]);
  if (m->length[1] > 0) SHA256_Update(&ctx, m->piece[1], m->length[1]);
  SHA256_Final(digest, &ctx);
}

#if HAVE_LANES
typedef struct {
  const uint8_t* p[2];  // the bytes not yet compressed: p[0][0, n[0]) then p[1][0, n[1])
  size_t n[2];
  uint64_t done;        // bytes of the message compressed so far
  uint64_t length;
  long job;             // index of the message, -1: idle
  int pad_blocks;       // 0 while in the message; then the padded end, 1 or 2 blocks
  int pad_next;
  uint8_t join[64];     // a block that straddles the two pieces
  uint8_t pad[128];
} lane_t;

#define AVX512 __attribute__((target("avx512f,avx512bw")))

AVX512 static inline __m512i ror(__m512i x, int n) { return _mm512_ror_epi32(x, n); }

// One 64-byte block for each of the 16 lanes: state st[word][lane], blocks at p[lane].
AVX512 static void compress16(uint32_t st[8][LANES], const uint8_t* const p[LANES]) {
  __m512i w[16], t[16];
  for (int l = 0; l < LANES; l++) w[l] = _mm512_loadu_si512((const void*)p[l]);
  // Transpose (16 x 16 words) so that w[i] holds word i of every lane's block.
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(w[2 * i], w[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(w[2 * i], w[2 * i + 1]);
  }
  for (int g = 0; g < 4; g++) {
    w[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    w[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    w[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    w[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int j = 0; j < 4; j++) {
    __m512i a = _mm512_shuffle_i32x4(w[j], w[4 + j], 0x44), b = _mm512_shuffle_i32x4(w[8 + j], w[12 + j], 0x44);
    __m512i c = _mm512_shuffle_i32x4(w[j], w[4 + j], 0xee), d = _mm512_shuffle_i32x4(w[8 + j], w[12 + j], 0xee);
    t[j] = _mm512_shuffle_i32x4(a, b, 0x88);
    t[4 + j] = _mm512_shuffle_i32x4(a, b, 0xdd);
    t[8 + j] = _mm512_shuffle_i32x4(c, d, 0x88);
    t[12 + j] = _mm512_shuffle_i32x4(c, d, 0xdd);
  }
  const __m512i swap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);  // big-endian words
  for (int i = 0; i < 16; i++) w[i] = _mm512_shuffle_epi8(t[i], swap);

  __m512i a = _mm512_load_si512(st[0]), b = _mm512_load_si512(st[1]), c = _mm512_load_si512(st[2]), d = _mm512_load_si512(st[3]);
  __m512i e = _mm512_load_si512(st[4]), f = _mm512_load_si512(st[5]), g = _mm512_load_si512(st[6]), h = _mm512_load_si512(st[7]);
  // ternary logic: 0x96 = x ^ y ^ z, 0xca = x ? y : z (Ch), 0xe8 = majority (Maj).
#pragma GCC unroll 64
  for (int r = 0; r < 64; r++) {
    if (r >= 16) {
      __m512i w15 = w[(r - 15) & 15], w2 = w[(r - 2) & 15];
      __m512i s0 = _mm512_ternarylogic_epi32(ror(w15, 7), ror(w15, 18), _mm512_srli_epi32(w15, 3), 0x96);
      __m512i s1 = _mm512_ternarylogic_epi32(ror(w2, 17), ror(w2, 19), _mm512_srli_epi32(w2, 10), 0x96);
      w[r & 15] = _mm512_add_epi32(_mm512_add_epi32(w[r & 15], s0), _mm512_add_epi32(w[(r - 7) & 15], s1));
    }
    __m512i S1 = _mm512_ternarylogic_epi32(ror(e, 6), ror(e, 11), ror(e, 25), 0x96);
    __m512i ch = _mm512_ternarylogic_epi32(e, f, g, 0xca);
    __m512i t1 = _mm512_add_epi32(_mm512_add_epi32(h, S1), _mm512_add_epi32(ch, _mm512_add_epi32(w[r & 15], _mm512_set1_epi32((int)K[r]))));
    __m512i S0 = _mm512_ternarylogic_epi32(ror(a, 2), ror(a, 13), ror(a, 22), 0x96);
    __m512i maj = _mm512_ternarylogic_epi32(a, b, c, 0xe8);
    h = g;
    g = f;
    f = e;
    e = _mm512_add_epi32(d, t1);
    d = c;
    c = b;
    b = a;
    a = _mm512_add_epi32(t1, _mm512_add_epi32(S0, maj));
  }
  __m512i out[8] = {a, b, c, d, e, f, g, h};
  for (int i = 0; i < 8; i++) _mm512_store_si512(st[i], _mm512_add_epi32(out[i], _mm512_load_si512(st[i])));
}

static void lane_start(lane_t* ln, uint32_t st[8][LANES], int l, const sha256_msg_t* m, long job) {
  ln->job = job;
  ln->p[0] = m->piece[0];
  ln->n[0] = m->length[0];
  ln->p[1] = m->piece[1];
  ln->n[1] = m->length[1];
  ln->done = 0;
  ln->length = (uint64_t)m->length[0] + m->length[1];
  ln->pad_blocks = 0;
  ln->pad_next = 0;
  for (int i = 0; i < 8; i++) st[i][l] = IV[i];
}

/** Takes n bytes from the lane's pieces into out (n <= what is left). */
static void lane_take(lane_t* ln, uint8_t* out, size_t n) {
  size_t a = n < ln->n[0] ? n : ln->n[0];
  memcpy(out, ln->p[0], a);
  memcpy(out + a, ln->p[1], n - a);
  ln->p[0] += a;
  ln->n[0] -= a;
  ln->p[1] += n - a;
  ln->n[1] -= n - a;
}

/** The lane's next block, consumed; *last is set when it is the message's final one. */
static inline __attribute__((always_inline)) const uint8_t* lane_block(lane_t* ln, int* last) {
  *last = 0;
  if (ln->pad_blocks == 0) {
    if (ln->n[0] >= 64) {
      const uint8_t* b = ln->p[0];
      ln->p[0] += 64;
      ln->n[0] -= 64;
      ln->done += 64;
      return b;
    }
    size_t left = ln->n[0] + ln->n[1];
    if (left >= 64) {
      lane_take(ln, ln->join, 64);
      ln->done += 64;
      return ln->join;
    }
    // The end: the last bytes, 0x80, zeros, the length in bits (big-endian), in 1 or 2 blocks.
    memset(ln->pad, 0, sizeof ln->pad);
    lane_take(ln, ln->pad, left);
    ln->pad[left] = 0x80;
    ln->pad_blocks = left < 56 ? 1 : 2;
    uint64_t bits = ln->length * 8;
    for (int i = 0; i < 8; i++) ln->pad[ln->pad_blocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
  }
  const uint8_t* b = ln->pad + 64 * ln->pad_next++;
  *last = ln->pad_next == ln->pad_blocks;
  return b;
}

/** Finishes a lane's message from the state its lane reached, as one stream. */
static void lane_finish(lane_t* ln, uint32_t st[8][LANES], int l, uint8_t* digest) {
  uint32_t one[8];
  for (int i = 0; i < 8; i++) one[i] = st[i][l];
  for (int k = 0; k < 2 && ln->pad_blocks == 0; k++) {
    // The whole blocks left in the first piece in one call; then in the second, once the first
    // is used up.
    if (k == 1 && ln->n[0] != 0) break;
    int p = ln->n[0] != 0 ? 0 : 1;
    size_t whole = ln->n[p] / 64;
    compress1(one, ln->p[p], whole);
    ln->p[p] += 64 * whole;
    ln->n[p] -= 64 * whole;
    ln->done += 64 * whole;
  }
  for (int last = 0; !last;) compress1(one, lane_block(ln, &last), 1);
  for (int i = 0; i < 8; i++) put_be32(digest + 4 * i, one[i]);
}

static void lanes_batch(const sha256_msg_t* msgs, size_t count, uint8_t* digests) {
  static const uint8_t idle[64];
  uint32_t st[8][LANES] __attribute__((aligned(64)));
  lane_t lanes[LANES];
  const uint8_t* p[LANES];
  int last[LANES];
  size_t next = 0;
  int busy = 0;
  // One stream in plain C does about a third of what a vector step does for all sixteen lanes:
  // without SHA-NI, the lanes carry on until fewer than three are busy.
  const int finish_below = compress1 == compress1_c ? 3 : MIN_BUSY_LANES;
  for (int l = 0; l < LANES; l++) {
    lanes[l].job = -1;
    if (next < count) {
      lane_start(&lanes[l], st, l, &msgs[next], (long)next);
      next++;
      busy++;
    }
  }
  while (busy > 0) {
    if (next == count && busy < finish_below) {
      for (int l = 0; l < LANES; l++)
        if (lanes[l].job >= 0) lane_finish(&lanes[l], st, l, digests + 32 * lanes[l].job);
      return;
    }
    for (int l = 0; l < LANES; l++) {
      last[l] = 0;
      p[l] = lanes[l].job < 0 ? idle : lane_block(&lanes[l], &last[l]);
    }
    compress16(st, p);
    for (int l = 0; l < LANES; l++) {
      lane_t* ln = &lanes[l];
      if (ln->job < 0 || !last[l]) continue;
      for (int i = 0; i < 8; i++) put_be32(digests + 32 * ln->job + 4 * i, st[i][l]);
      ln->job = -1;
      busy--;
      if (next < count) {
        lane_start(ln, st, l, &msgs[next], (long)next);
        next++;
        busy++;
      }
    }
  }
}
#endif

void sha256_batch(const sha256_msg_t* msgs, size_t count, uint8_t* digests) {
#if HAVE_LANES
  if (use_lanes && count >= MIN_BUSY_LANES) {
    lanes_batch(msgs, count, digests);
    return;
  }
#endif
  for (size_t i = 0; i < count; i++) openssl_one(&msgs[i], digests + 32 * i);
}
