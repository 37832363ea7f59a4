// The gear-hash scan of the chunker (images/chunker.ts) in C: the same rule as the WebAssembly
// scan (images/gear-scan.ts), h = (h << 1) + gear[byte] per byte, stopping just past the first
// byte where (h & mask) == 0. Why C, and why eight bytes at a time: rolled byte by byte, every
// byte waits for the previous hash (a dependent shift-add, 2 cycles here: about 1 GB/s, like
// the wasm loop). Over eight bytes the table part, t_k = sum of gear[b_j] << (k - j), does not
// depend on h, so it is computed beside the chain; h after k bytes is then (h << k) + t_k, one
// independent shift-add each, checked in order so the first cut wins exactly as byte by byte.
#include "gear_scan.h"

int64_t gear_scan(const uint32_t* gear, const uint8_t* p, size_t from, size_t to, uint32_t* hp, uint32_t mask) {
  uint32_t h = *hp;
  size_t i = from;
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
