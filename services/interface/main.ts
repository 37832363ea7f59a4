// Composition root of the Interface process: builds every part from the config and hands each
// its collaborators; nothing starts here. main runs the service until a signal; tests build the
// same service with buildInterface and start/stop it themselves.
import type { Config } from '../../platform/runtime/config.ts';
import { publishBoundPort } from '../../platform/local/bound-port.ts';
import { ControlServer, controlSocketPath } from '../../platform/local/control.ts';
import { runUntilSignal, type Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { notifyReady } from '../../platform/runtime/sd-notify.ts';
import { BootwizService, bootwizControlRoutes } from '../../bootwiz/bootwiz-service.ts';
import { checkDriverDir } from '../../bootwiz/drivers.ts';
import { LINUXPE_X64 } from '../../bootwiz/recipe.ts';
import { LocalKey } from '../../platform/trust/local-key.ts';
import { PeerKeys } from '../../platform/trust/peer-keys.ts';
import { buildPackages } from '../../packages/package-parts.ts';
import { packageControlRoutes } from '../../packages/control-routes.ts';
import { imageControlRoutes } from '../../images/image-routes.ts';
import { CaptureUploads } from '../../images/capture-uploads.ts';
import type { FeedState } from '../../boot/feed-protocol.ts';
import { DropFolder } from '../../state/drop-folder.ts';
import { JobBook } from '../../state/jobs.ts';
import { AgentRoutes } from '../../state/jobs-agent-routes.ts';
import { Enrolment, enrolmentStatements } from '../../state/enrolment.ts';
import { EnrolRoutes } from '../../state/enrolment-routes.ts';
import { EventOutbox } from '../../state/event-outbox.ts';
import { StateBook } from '../../state/state-book.ts';
import { openStore, type Db } from '../../state/store.ts';
import { FeedServer } from './feed-server.ts';
import { InterfaceService, NO_OUTBOX } from './interface-service.ts';
import { PeerHub } from './peer-hub.ts';
import { PortServer } from './port-server.ts';
import { WebServer } from '../../web/web-server.ts';

export interface InterfaceOptions {
  /** Wraps the package component's lifecycle (tests: hold its start to watch readiness). */
  readonly wrapPackages?: (packages: Lifecycle) => Lifecycle;
}

/** Builds the Interface; throws (with the store closed again) when a part cannot be built. */
export function buildInterface(config: Config, log: Logger, options: InterfaceOptions = {}): InterfaceService {
  const db: Db = openStore(config.paths.data);
  try {
    return compose(config, log, db, options);
  } catch (err) {
    db.close();
    throw err;
  }
}

function compose(config: Config, log: Logger, db: Db, options: InterfaceOptions): InterfaceService {
  // Parts report to the service, which is built last: the closures run only once it has started.
  const book = new StateBook(db, log);
  const outbox = config.management.url === null ? NO_OUTBOX
    : new EventOutbox(db, { url: config.management.url, serverId: config.site.id, timeoutMs: config.management.timeoutMs }, log.child({ part: 'outbox' }));
  const localKey = LocalKey.of(config.paths.data);
  const feed = new FeedServer(book, log.child({ part: 'feed' }), (id, event) => service.onEvent(id, event), localKey);
  const port = new PortServer(config.interface.bind, config.interface.port, log, config.interface);
  // Port 0 (tests): the PXE server finds the port the kernel picked in <data>/run/interface.port.
  port.onListening((bound) => publishBoundPort(config.paths.data, 'interface', config.interface.port, bound));
  port.upgrade('/feed', feed.handleUpgrade);
  // Peer keys are read once, here; an unreadable or weak key stops the Interface with the reason.
  const keys = new PeerKeys(config);
  const peers = new PeerHub(config, db, book, keys, log.child({ part: 'peers' }));
  peers.mount(port);
  const jobs = new JobBook(book, () => outbox.kick());
  // Initial deployment (state/enrolment.ts): before /agent/, whose prefix it shares.
  const enrolment = new Enrolment(book, enrolmentStatements(db), () => localKey.get(), () => outbox.kick());
  port.http('/agent/enrol', new EnrolRoutes(enrolment, log.child({ part: 'enrol' })).handle);
  port.http('/agent/', new AgentRoutes(jobs, log.child({ part: 'agent' })).handle);
  // An agent's capture uploads into the package store under the package's lock (built below).
  const uploads = new CaptureUploads(jobs, (pkg, fn) => packages.withStore(pkg, fn), log.child({ part: 'uploads' }));
  const folder = new DropFolder({
    dir: config.paths.sbs, storeDir: config.paths.sbsStore, settleMs: config.interface.settleMs, parseRetryMs: config.interface.parseRetryMs,
    maxFileBytes: config.interface.maxSbsFileMib * 1024 * 1024,
    onReady: (files) => service.applyFiles(files), onRejected: (r) => service.onRejected(r),
  }, log.child({ part: 'sbs' }));
  const packages = buildPackages(config, log.child({ part: 'packages' }), port, {
    onStatusChange: (s) => {
      service.onPackageStatus(s);
      bootwiz.onPackageStatus(s);
    },
    checkPublish: (dir, kind) => {
      if (kind === 'driver') checkDriverDir(dir);
    },
    agents: jobs,
    uploads,
  }, keys);
  const bootwiz = new BootwizService({ dataDir: config.paths.data, tftpRoot: config.paths.tftpRoot, buildOnStart: config.bootwiz.buildOnStart, installIpxe: config.bootwiz.installIpxe, agentEntry: config.bootwiz.agentEntry }, log.child({ part: 'bootwiz' }), {
    publish: (dir, id) => packages.publish(dir, id, 'preboot'),
    offer: (image) => void book.putBuiltImage(image, new Date()),
    readyDrivers: () => packages.readyOfKind('driver'),
    owns: (id) => {
      const ref = packages.refOf(id);
      return ref === null || ref.owner === config.site.id;
    },
  });
  const control = new ControlServer(controlSocketPath(config.paths.data, 'interface'), {
    'GET /status': () => service.status(),
    'GET /state': () => ({ ...book.describe(), state: withoutSecrets(book.state()) }),
    'GET /jobs': () => ({ jobs: enrolment.annotate(jobs.list()) }),
    'GET /peers': () => peers.status(),
    'GET /peers/latencies': () => peers.latencies(),
    ...packageControlRoutes(packages),
    ...imageControlRoutes(packages, config.site.id),
    ...bootwizControlRoutes(() => bootwiz),
  }, log);
  const service: InterfaceService = new InterfaceService(
    { db, book, control, port, feed, peers, outbox, folder, packages: options.wrapPackages?.(packages) ?? packages, bootwiz, jobs },
    {
      standalone: config.management.url === null, sbsDir: config.paths.sbs,
      seedMenu: config.bootwiz.seedMenu ? { image: LINUXPE_X64.id, timeoutSec: config.bootwiz.menuTimeoutSec } : null,
    },
    log,
  );
  return service;
}

/** Job secrets go to the PXE server's feed only, never to a command's output. */
function withoutSecrets(state: FeedState): FeedState {
  return state.jobs === undefined ? state : { ...state, jobs: state.jobs.map((j) => ({ ...j, secret: '(hidden)' })) };
}

export async function main(config: Config, log: Logger): Promise<number> {
  let service: InterfaceService;
  try {
    service = buildInterface(config, log);
  } catch (err) {
    log.error('interface failed to start', { err });
    return 1;
  }
  return runUntilSignal('interface', [service, new WebServer(config, log.child({ part: 'web' }))], log, () => void notifyReady(log, 'serving the SBS folder and state feed'));
}
