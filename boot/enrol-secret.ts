// The enrolment secret of a machine with no client entry (sbs-v1 "Initial deployment"): what its
// agent shows the site to be allowed to register that machine and get a job for it. Derived, not
// stored: HMAC-SHA256 of the MAC under the site server's local key (<data>/run/local.key, which
// the PXE server, the TFTP service and the Interface already share), with a label of its own so
// it can never be mistaken for another use of that key. The PXE server puts it on the kernel
// command line of that machine's preboot only (`netboot.enrol=<64 hex>`); the Interface checks
// it by deriving it again. Nothing is written per unknown machine, so a storm of made-up MACs
// costs no state, and a secret names one MAC: it is refused for any other. Pure: key in, text out.
import { createHmac, timingSafeEqual } from 'node:crypto';

const LABEL = 'netboot initial deployment enrolment v1\n';
const SECRET = /^[0-9a-f]{64}$/;

/** The secret for `mac` (normalised: lower case, `:`), 64 hex digits. */
export function enrolSecret(key: Buffer, mac: string): string {
  return createHmac('sha256', key).update(LABEL).update(mac).digest('hex');
}

/** Does `secret` belong to `mac` under `key`? Constant-time in the secret. */
export function isEnrolSecret(key: Buffer, mac: string, secret: string): boolean {
  if (!SECRET.test(secret)) return false;
  return timingSafeEqual(Buffer.from(enrolSecret(key, mac), 'hex'), Buffer.from(secret, 'hex'));
}

/** A PolicyOptions.enrolSecret from a key read on first use (the LocalKey's get). */
export function enrolSecrets(key: () => Buffer): (mac: string) => string {
  return (mac) => enrolSecret(key(), mac);
}
