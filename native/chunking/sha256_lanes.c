// SHA-256 of many independent messages at once, sixteen at a time, one per 32-bit lane of the
// AVX-512 registers (multi-buffer hashing). Why: SHA-NI runs one message's rounds back to back,
// each waiting for the last (about 1 GB/s per core here); sixteen messages side by side keep the
// vector units busy instead (about 1.6 GB/s per core here). Each lane takes the next message as
// soon as its own is done; once the batch runs out and too few lanes are left busy to beat one
// SHA-NI stream, their messages are finished with OpenSSL from the state they reached.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sha256_lanes.h"

#include <math.h>
#include <openssl/sha.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_LANES 1
#else
#define HAVE_LANES 0
#endif

#define LANES 16
// Below this many busy lanes (and nothing left to start), the vector step does less than one
// SHA-NI stream would: hand the rest to OpenSSL.
#define MIN_BUSY_LANES 9

static uint32_t K[64];
static uint32_t IV[8];
static int use_lanes;

// The constants of FIPS 180-4, computed rather than typed out: the first 32 bits of the
// fractional parts of the cube roots (K) and square roots (IV) of the first primes.
void sha256_batch_init(void) {
  int n = 0;
  for (int p = 2; n < 64; p++) {
    int prime = 1;
    for (int d = 2; d * d <= p; d++)
      if (p % d == 0) prime = 0;
    if (!prime) continue;
    long double c = cbrtl((long double)p), s = sqrtl((long double)p);
    K[n] = (uint32_t)((c - floorl(c)) * 4294967296.0L);
    if (n < 8) IV[n] = (uint32_t)((s - floorl(s)) * 4294967296.0L);
    n++;
  }
#if HAVE_LANES
  use_lanes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
}

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
static const uint8_t* lane_block(lane_t* ln, int* last) {
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

/** Finishes a lane's message with OpenSSL from the state its lane reached. */
static void lane_finish_openssl(const lane_t* ln, uint32_t st[8][LANES], int l, uint8_t* digest) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  for (int i = 0; i < 8; i++) ctx.h[i] = st[i][l];
  if (ln->pad_blocks == 0) {
    uint64_t bits = ln->done * 8;
    ctx.Nl = (SHA_LONG)bits;
    ctx.Nh = (SHA_LONG)(bits >> 32);
    SHA256_Update(&ctx, ln->p[0], ln->n[0]);
    if (ln->n[1] > 0) SHA256_Update(&ctx, ln->p[1], ln->n[1]);
    SHA256_Final(digest, &ctx);
    return;
  }
  for (int k = ln->pad_next; k < ln->pad_blocks; k++) SHA256_Transform(&ctx, ln->pad + 64 * k);
  for (int i = 0; i < 8; i++) put_be32(digest + 4 * i, ctx.h[i]);
}

static void lanes_batch(const sha256_msg_t* msgs, size_t count, uint8_t* digests) {
  static const uint8_t idle[64];
  uint32_t st[8][LANES] __attribute__((aligned(64)));
  lane_t lanes[LANES];
  const uint8_t* p[LANES];
  int last[LANES];
  size_t next = 0;
  int busy = 0;
  for (int l = 0; l < LANES; l++) {
    lanes[l].job = -1;
    if (next < count) {
      lane_start(&lanes[l], st, l, &msgs[next], (long)next);
      next++;
      busy++;
    }
  }
  while (busy > 0) {
    if (next == count && busy < MIN_BUSY_LANES) {
      for (int l = 0; l < LANES; l++)
        if (lanes[l].job >= 0) lane_finish_openssl(&lanes[l], st, l, digests + 32 * lanes[l].job);
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
