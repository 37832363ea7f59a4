// The gear-hash scan of the chunker (images/chunker.ts) in C: the same rule as the WebAssembly
// scan (images/gear-scan.ts), h = (h << 1) + gear[byte] per byte, stopping just past the first
// byte where (h & mask) == 0.
//
// Why not byte by byte: every byte then waits for the previous hash (a dependent shift-add, 2
// cycles here: about 1 GB/s, like the wasm loop). Two facts break that chain. The table part of
// the hash over a run of bytes, t_k = sum of gear[b_j] << (k - j), does not depend on h, and h
// after k bytes is (h << k) + t_k. And h is 32 bits shifted left once per byte, so 32 bytes on
// it no longer depends on anything before them. With AVX-512 (about 2 GB/s here): 16 bytes per
// vector, their table values gathered, t_k by a log-step prefix sum (4 shifted adds), two
// vectors (32 bytes) per round, the hash after the round computed from their t alone. Without
// it: eight bytes per round in scalar code, t_k beside the chain (about 1.2-1.6 GB/s). Either
// way every position is checked and the first cut is returned, exactly as byte by byte.
#include "gear_scan.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX512 1
#else
#define HAVE_AVX512 0
#endif

static int use_avx512;

void gear_scan_init(void) {
#if HAVE_AVX512
  use_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
}

int gear_scan_avx512(void) { return use_avx512; }

int64_t gear_scan_scalar(const uint32_t* gear, const uint8_t* p, size_t i, size_t to, uint32_t* hp, uint32_t mask) {
  uint32_t h = *hp;
  for (; i + 8 <= to; i += 8) {
    uint32_t t[8];
    uint32_t acc = 0;
    for (int k = 0; k < 8; k++) t[k] = acc = (acc << 1) + gear[p[i + k]];
    for (int k = 0; k < 8; k++)
      if ((((h << (k + 1)) + t[k]) & mask) == 0) return (int64_t)(i + k + 1);
    h = (h << 8) + t[7];
  }
  for (; i < to; i++) {
    h = (h << 1) + gear[p[i]];
    if ((h & mask) == 0) return (int64_t)(i + 1);
  }
  *hp = h;
  return -1;
}

#if HAVE_AVX512
#define AVX512 __attribute__((target("avx512f,avx512bw")))

/** Lane i of the result: sum over j <= i of g_j << (i - j) (lane i - k is lane i shifted k up). */
AVX512 static inline __m512i prefix(__m512i g) {
  const __m512i z = _mm512_setzero_si512();
  g = _mm512_add_epi32(g, _mm512_slli_epi32(_mm512_alignr_epi32(g, z, 15), 1));
  g = _mm512_add_epi32(g, _mm512_slli_epi32(_mm512_alignr_epi32(g, z, 14), 2));
  g = _mm512_add_epi32(g, _mm512_slli_epi32(_mm512_alignr_epi32(g, z, 12), 4));
  return _mm512_add_epi32(g, _mm512_slli_epi32(_mm512_alignr_epi32(g, z, 8), 8));
}

AVX512 static int64_t scan_avx512(const uint32_t* gear, const uint8_t* p, size_t i, size_t to, uint32_t* hp, uint32_t mask) {
  const __m512i s1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  const __m512i s17 = _mm512_add_epi32(s1, _mm512_set1_epi32(16));  // shifts of 32 give 0
  const __m512i last = _mm512_set1_epi32(15);
  const __m512i m = _mm512_set1_epi32((int)mask);
  __m512i hv = _mm512_set1_epi32((int)*hp);  // the hash before byte i, in every lane
  for (; i + 32 <= to; i += 32) {
    __m512i ia = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + i)));
    __m512i ib = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + i + 16)));
    __m512i ta = prefix(_mm512_i32gather_epi32(ia, (const int*)gear, 4));
    __m512i tb = prefix(_mm512_i32gather_epi32(ib, (const int*)gear, 4));
    __m512i ta15 = _mm512_permutexvar_epi32(last, ta);
    __m512i ha = _mm512_add_epi32(ta, _mm512_sllv_epi32(hv, s1));
    __m512i hb = _mm512_add_epi32(_mm512_add_epi32(tb, _mm512_sllv_epi32(ta15, s1)), _mm512_sllv_epi32(hv, s17));
    uint32_t cut = (uint32_t)_mm512_testn_epi32_mask(ha, m) | ((uint32_t)_mm512_testn_epi32_mask(hb, m) << 16);
    if (cut != 0) return (int64_t)(i + (size_t)__builtin_ctz(cut) + 1);
    hv = _mm512_add_epi32(_mm512_permutexvar_epi32(last, tb), _mm512_slli_epi32(ta15, 16));
  }
  *hp = (uint32_t)_mm_cvtsi128_si32(_mm512_castsi512_si128(hv));
  return gear_scan_scalar(gear, p, i, to, hp, mask);
}
#endif

int64_t gear_scan(const uint32_t* gear, const uint8_t* p, size_t from, size_t to, uint32_t* hp, uint32_t mask) {
#if HAVE_AVX512
  if (use_avx512 && to - from >= 32) return scan_avx512(gear, p, from, to, hp, mask);
#endif
  return gear_scan_scalar(gear, p, from, to, hp, mask);
}
