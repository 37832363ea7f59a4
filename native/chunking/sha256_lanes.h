// SHA-256 of a batch of messages, each in one or two pieces of memory (a chunk can span two
// read blocks): sixteen at a time in AVX-512 lanes where the CPU has it, else one by one with
// OpenSSL's SHA-256 (SHA-NI where the CPU has it). Constants: FIPS 180-4, as a table.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const uint8_t* piece[2];
  size_t length[2];  // length[1] = 0: one piece
} sha256_msg_t;

/** Once per process, before any batch. */
void sha256_batch_init(void);
/** 1 if batches use the AVX-512 lanes. */
int sha256_batch_lanes(void);
/** The one-block compression lanes finish with: "sha-ni" or "c". */
const char* sha256_engine(void);
/** Tests: forces that compression ("sha-ni" where the CPU has it, or "c"); 0 if it cannot. */
int sha256_set_engine(const char* name);
/** The digest of msgs[i] at digests + 32 * i. */
void sha256_batch(const sha256_msg_t* msgs, size_t count, uint8_t* digests);
