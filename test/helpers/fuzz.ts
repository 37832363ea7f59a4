// Seeds for the fuzz tests: FUZZ_SEED=n replays a run, otherwise a fresh seed each run. The seed is
// in the test's name, so a failure in CI says how to replay it.
import { randomInt } from 'node:crypto';

export function fuzzSeed(): number {
  const given = process.env.FUZZ_SEED;
  if (given !== undefined && given !== '') {
    const n = Number(given);
    if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32) throw new Error(`FUZZ_SEED must be an integer 0..2^32-1, not ${given}`);
    return n;
  }
  return randomInt(2 ** 31);
}

/** mulberry32: small and seedable; a float in [0, 1) per call. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
