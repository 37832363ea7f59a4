#pragma once
#include <stddef.h>
#include <stdint.h>

/** Once per process, before any scan: picks AVX-512 where the CPU has it. */
void gear_scan_init(void);
/** 1 if scans use AVX-512. */
int gear_scan_avx512(void);
/**
 * Rolls the gear hash h = (h << 1) + gear[p[i]] over p[from, to) from *h: the index just past the
 * first byte where (h & mask) == 0, or -1 with the hash at `to` left in *h.
 */
int64_t gear_scan(const uint32_t* gear, const uint8_t* p, size_t from, size_t to, uint32_t* h, uint32_t mask);
/** The same in scalar code, whatever the CPU. */
int64_t gear_scan_scalar(const uint32_t* gear, const uint8_t* p, size_t from, size_t to, uint32_t* h, uint32_t mask);
