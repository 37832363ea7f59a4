// Builds the package component's parts from the config and hands each its collaborators
// (constructors only; nothing starts here). The Interface's composition root calls this; tests
// of the package component call it with their own port.
import type { Config } from '../platform/runtime/config.ts';
import type { Logger } from '../platform/runtime/logger.ts';
import { PeerKeys } from '../platform/trust/peer-keys.ts';
import { PackageFeedServer } from './feed-server.ts';
import { PackageHttp } from './http-routes.ts';
import { PackagePeers } from './package-peers.ts';
import { PackageService, type PackageHooks, type PortRoutes } from './package-service.ts';
import { PackageStore } from './package-store.ts';
import { PublishJobs } from './publish-jobs.ts';
import { Scrubber } from './scrub.ts';
import type { SegmentRule } from './segments.ts';
import { RateLimiter, VersionWatcher } from './verify.ts';

/**
 * Throws (with the package store closed again) when a part cannot be built, e.g. a bad key file.
 * `keys`: the peer keys the Interface already read (read here when not given, as in tests);
 * `storage`: which files are stored as segments (tests lower the size; segments.ts).
 */
export function buildPackages(config: Config, log: Logger, port: PortRoutes, hooks: PackageHooks = {}, given?: PeerKeys, storage: { segments?: SegmentRule } = {}): PackageService {
  // The parts report to the service, built last; their callbacks run only once it has started.
  const store = new PackageStore(config.paths.data, config.site.id, log, {
    onRecord: (r) => service.onRecord(r),
    onCorrupt: (c) => service.corrupt(c),
  }, storage);
  let service: PackageService;
  try {
    const keys = given ?? new PeerKeys(config);
    const c = config.packages;
    service = new PackageService(config, log, {
      port, store, keys,
      http: new PackageHttp(store, keys, log.child({ part: 'pkg-http' }), hooks.agents ?? null, hooks.uploads ?? null),
      feed: new PackageFeedServer(config.site.id, keys, store.db, log.child({ part: 'pkg-feed' })),
      peers: new PackagePeers(config, keys, store, { onRef: (ref, from) => service.adoptRef(ref, from), onLinkUp: () => service.linkUp() }, log),
      jobs: new PublishJobs((dir, pkg, kind, progress) => service.runPublish(dir, pkg, kind, progress), log),
      throttle: c.fetchRateKib > 0 ? new RateLimiter(c.fetchRateKib * 1024) : null,
      watcher: c.watch ? new VersionWatcher((pkg, digest, rel) => void service.touched(pkg, digest, rel), log.child({ part: 'pkg-watch' })) : null,
      scrubber: c.scrubIntervalMs > 0
        ? new Scrubber({ store, busy: (pkg) => service.busy(pkg), onDamage: (pkg, digest, path, reason) => service.scheduleRepair(pkg, digest, path, reason) }, c.scrubIntervalMs, c.scrubRateMib, log)
        : null,
    }, hooks);
    return service;
  } catch (err) {
    store.close();
    throw err;
  }
}
