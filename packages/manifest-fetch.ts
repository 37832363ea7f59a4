// A replica gets the manifest of a new ref (and its parts it does not hold) from the peers that
// should have it, in order, verifying every blob against its digest and refusing a manifest of
// another package; nothing is stored until the whole manifest resolves.
import { NetbootError, errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { sha256Hex } from './digest.ts';
import { MAX_MANIFEST_BYTES, decodeManifestTop, partDigests, resolveManifest, type Manifest } from './manifest.ts';
import type { PackageRef } from './model.ts';
import type { PackageStore } from './package-store.ts';
import type { PeerLink } from './peer-link.ts';
import { AbortedError } from './placement.ts';

/** The manifest for a ref: held, or fetched from the first of `peers` that serves a valid one. */
export async function fetchManifest(store: PackageStore, ref: PackageRef & { digest: string }, peers: readonly PeerLink[], signal: AbortSignal, log: Logger): Promise<Manifest> {
  const pkg = ref.package;
  const held = store.manifest(ref.digest);
  if (held !== null) return held;
  for (const link of peers) {
    if (!link.connected || signal.aborted) continue;
    const id = link.id;
    try {
      const fetchBlob = async (digest: string): Promise<Buffer> => {
        const body = await link.getBody(`/pkg/manifests/${digest}`, MAX_MANIFEST_BYTES);
        if (sha256Hex(body) !== digest) throw new NetbootError('MANIFEST_TAMPERED', `${digest} does not match its digest`);
        return body;
      };
      const body = await fetchBlob(ref.digest);
      const top = decodeManifestTop(body);
      if (top.package !== pkg || top.kind !== ref.kind) {
        log.warn('rejected a manifest for another package', { peer: id, package: pkg, manifestPackage: top.package, kind: top.kind });
        continue;
      }
      const parts = new Map<string, Buffer>();
      const missing = partDigests(top).filter((d) => {
        const have = store.db.getManifest(d);
        if (have !== null) parts.set(d, have);
        return have === null;
      });
      for (let i = 0; i < missing.length; i += 4) {
        const got = await Promise.all(missing.slice(i, i + 4).map(async (d) => [d, await fetchBlob(d)] as const));
        for (const [d, b] of got) parts.set(d, b);
      }
      const m = resolveManifest(top, (d) => parts.get(d) ?? null);
      store.putManifest({ digest: ref.digest, body, parts });
      log.info('manifest fetched', { package: pkg, digest: ref.digest, peer: id, bytes: body.length, parts: missing.length, partsHeld: parts.size - missing.length });
      return m;
    } catch (err) {
      log.warn('manifest fetch failed', { peer: id, digest: ref.digest, err: errorMessage(err) });
    }
  }
  if (signal.aborted) throw new AbortedError();
  throw new NetbootError('MANIFEST_UNAVAILABLE', `manifest ${ref.digest} not available from any connected peer`);
}
