// Exponential backoff for retries and restarts: base, 2·base, 4·base, ... capped. Pure.

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
}

/** Delay before retry number `failures` (1 = after the first failure). */
export function backoffDelayMs(failures: number, policy: BackoffPolicy): number {
  if (failures <= 0) return 0;
  const exponent = Math.min(failures - 1, 30); // 2^30 · base already exceeds any sane cap
  return Math.min(policy.capMs, policy.baseMs * 2 ** exponent);
}
