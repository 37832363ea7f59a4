// The TFTP transport: the listening socket (requests), one connected socket per transfer, and
// a shared socket for error replies to requests (a fresh TID, as RFC 1350 asks, without a bind
// per probe for a missing file). Every datagram handler has one guard: a bad packet is dropped
// with a logged reason and the service keeps serving.
import { tftpRequestFailed, tftpTransferEnded, tftpTransferStarted } from '../../platform/metrics/tftp-metrics.ts';
import type { Socket } from 'node:dgram';
import type { SendPath } from '../../platform/runtime/config.ts';
import { errorMessage } from '../../platform/runtime/errors.ts';
import type { Lifecycle } from '../../platform/runtime/lifecycle.ts';
import type { Logger } from '../../platform/runtime/logger.ts';
import { BlockRing, RingBudget } from './block-ring.ts';
import type { BootHooks } from './boot-hooks.ts';
import { chooseSendPath, NativeLinks, type NativeSupport } from './native-link.ts';
import { declineOptions, negotiate, type NegotiationLimits } from '../../protocols/tftp/options.ts';
import { RefusalLog } from './refusal-log.ts';
import { resolveTarget, type Target } from './request-target.ts';
import { decode, errorPacket, TFTP_ERROR, type RequestPacket } from '../../protocols/tftp/tftp-codec.ts';
import type { TftpRoot } from './tftp-root.ts';
import { TftpSession, type SessionEnd } from './tftp-session.ts';
import { bindSocket, DgramLink, listenDgram, type Peer, type RequestSocket, type TransferLink } from './transfer-link.ts';
import { lastBlockFor, TransferMachine } from '../../protocols/tftp/transfer.ts';

export interface TftpServerOptions {
  readonly bind: string;
  readonly port: number;
  readonly root: TftpRoot;
  readonly limits: NegotiationLimits & { readonly retries: number };
  readonly hooks: BootHooks;
  readonly log: Logger;
  /** How transfer sockets send (default auto: native GSO, else sendmmsg, else node:dgram). */
  readonly sendPath?: SendPath;
  /** The native UDP addon, or why not: loaded by the composition root (main.ts), not here. */
  readonly native: NativeSupport;
  /** Transfers running or being set up, overall and per client address (defaults below). */
  readonly maxTransfers?: number;
  readonly maxTransfersPerClient?: number;
  /** A transfer still running this long after it started is abandoned. */
  readonly maxSessionMs?: number;
  /** Ring buffer bytes all transfers together may grow to (block-ring.ts). */
  readonly bufferBudgetBytes?: number;
}

export const DEFAULT_MAX_TRANSFERS = 512;
export const DEFAULT_MAX_TRANSFERS_PER_CLIENT = 16;
export const DEFAULT_MAX_SESSION_MS = 3600_000;
/**
 * Room for hundreds of transfers with the options real firmware asks for (a ring is at most
 * 2 × max(window, 128 KiB) of blocks: about 270 KB for iPXE's 1432 × 1, EDK2's 1468 × 16 or
 * bootmgr's 16384 × 8), and for some thirty at once at the extreme blksize 65464 windowsize 64
 * (8.4 MB each). The first slots of every ring (64 KiB at most) are granted outside it.
 */
export const DEFAULT_BUFFER_BUDGET_BYTES = 256 * 1024 * 1024;

export type ServerState = 'new' | 'starting' | 'serving' | 'stopping' | 'stopped';

/** A request being resolved (no socket yet) or a running transfer. */
type Slot = { readonly kind: 'pending' } | { readonly kind: 'session'; readonly session: TftpSession };
const PENDING: Slot = Object.freeze({ kind: 'pending' });

/** Windows up to this many bytes keep the default send buffer (net.core.wmem_default: 208 KiB unless lowered). */
const SMALL_SEND_BUFFER = 64 * 1024;

/** Cap of the doubling retransmission interval (above common client timeouts of 1 to 5 s). */
export const MAX_RETRANSMIT_INTERVAL_MS = 8000;

const CLIENT_MESSAGE: Record<number, string> = {
  [TFTP_ERROR.FILE_NOT_FOUND]: 'File not found',
  [TFTP_ERROR.ACCESS_VIOLATION]: 'Access violation',
};

export class TftpServer implements Lifecycle {
  state: ServerState = 'new';
  private listener: RequestSocket | null = null;
  private replier: Socket | null = null;
  /** Keyed by the client's address:port (its TID): one transfer per client TID. */
  private readonly slots = new Map<string, Slot>();
  /** Slots per client address (for max_transfers_per_client). */
  private readonly perClient = new Map<string, number>();
  private readonly budget: RingBudget;
  private readonly refusals: RefusalLog;
  private boundPort = 0;
  /** Native transfer sockets, or null for node:dgram ones. */
  private links: NativeLinks | null = null;
  private sendKind: 'gso' | 'sendmmsg' | 'dgram' = 'dgram';

  constructor(private readonly opts: TftpServerOptions) {
    this.budget = new RingBudget(opts.bufferBudgetBytes ?? DEFAULT_BUFFER_BUDGET_BYTES);
    this.refusals = new RefusalLog(opts.log);
  }

  get port(): number {
    return this.boundPort;
  }

  /** Transfers running or being set up. */
  get activeTransfers(): number {
    return this.slots.size;
  }

  /** Bytes of ring buffers the running transfers hold (for status and tests). */
  get bufferBytes(): number {
    return this.budget.usedBytes;
  }

  /** The send path transfers use (known once started). */
  get sendPath(): 'gso' | 'sendmmsg' | 'dgram' {
    return this.sendKind;
  }

  async start(): Promise<void> {
    this.state = 'starting';
    const { bind, port, log } = this.opts;
    const support = this.opts.native;
    const choice = chooseSendPath(this.opts.sendPath ?? 'auto', support);
    this.sendKind = choice.kind;
    this.links = support.ok && choice.kind !== 'dgram' ? new NativeLinks(support.addon, choice.kind === 'gso') : null;
    const onDatagram = (buf: Buffer, length: number, address: string, from: number): void => {
      try {
        this.onRequest(buf, length, { address, port: from });
      } catch (err) {
        log.error('request handler failed', { peer: `${address}:${from}`, err });
      }
    };
    const onError = (err: Error): void => log.error('listening socket error', { err });
    // The request socket is the addon's when transfers are: a read request starts a machine's wait.
    this.listener = this.links !== null ? this.links.listen(bind, port, onDatagram, onError) : await listenDgram(bind, port, onDatagram, onError);
    this.replier = await bindSocket(bind, 0);
    this.replier.on('error', (err) => log.warn('error-reply socket error', { err }));
    this.boundPort = this.listener.port;
    this.state = 'serving';
    log.info('TFTP listening', { bind, port: this.boundPort, root: this.opts.root.dir, sendPath: choice.kind, sendPathReason: choice.reason });
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'new') return;
    this.state = 'stopping';
    this.listener?.close();
    this.listener = null;
    const ending: Promise<SessionEnd>[] = [];
    for (const slot of this.slots.values()) {
      if (slot.kind === 'session') {
        ending.push(slot.session.done);
        slot.session.shutdown();
      }
    }
    await Promise.all(ending);
    this.replier?.close();
    this.replier = null;
    this.refusals.close();
    this.state = 'stopped';
    this.opts.log.info('TFTP stopped', { abortedTransfers: ending.length });
  }

  private onRequest(buf: Buffer, length: number, rinfo: Peer): void {
    const log = this.opts.log;
    const peer = `${rinfo.address}:${rinfo.port}`;
    if (this.state !== 'serving') return;
    let packet;
    try {
      packet = decode(buf.subarray(0, length));
    } catch (err) {
      log.info('dropped malformed datagram', { peer, reason: errorMessage(err), bytes: length });
      tftpRequestFailed('malformed');
      return;
    }
    if (rinfo.port === 0) {
      log.info('dropped request from port 0', { peer });
      return;
    }
    if (packet.op === 'WRQ') {
      log.warn('write request refused', { peer, file: packet.filename, reason: 'read-only server' });
      this.replyError(rinfo, TFTP_ERROR.ACCESS_VIOLATION, 'Access violation: read-only server');
      return;
    }
    if (packet.op !== 'RRQ') {
      log.info('dropped non-request on the TFTP port', { peer, op: packet.op });
      return;
    }
    const mode = packet.mode.toLowerCase();
    if (mode !== 'octet' && mode !== 'netascii') {
      log.info('request refused', { peer, file: packet.filename, reason: `unsupported mode ${JSON.stringify(packet.mode)}` });
      this.replyError(rinfo, TFTP_ERROR.ILLEGAL_OPERATION, `unsupported mode ${packet.mode}`);
      return;
    }
    const slot = this.slots.get(peer);
    if (slot !== undefined) {
      // The client repeated its request: it may have missed our OACK.
      log.debug('repeated request', { peer, file: packet.filename });
      if (slot.kind === 'session') slot.session.requestRepeated();
      return;
    }
    if (!this.admit(peer, rinfo, packet.filename)) return;
    this.begin(packet, mode, rinfo).catch((err: unknown) => {
      this.drop(peer, rinfo.address);
      if (this.state !== 'serving') return; // stopped while setting up: nothing to answer
      log.error('could not start transfer', { peer, file: packet.filename, err });
      this.replyError(rinfo, TFTP_ERROR.NOT_DEFINED, 'server error');
    });
  }

  private async begin(req: RequestPacket, mode: 'octet' | 'netascii', rinfo: Peer): Promise<void> {
    const { log, root, hooks, limits, bind } = this.opts;
    const peer = `${rinfo.address}:${rinfo.port}`;
    const client = { address: rinfo.address, port: rinfo.port };
    const target = await resolveTarget(req.filename, mode, client, root, hooks);
    if (!target.ok) {
      this.drop(peer, rinfo.address);
      const level = target.code === TFTP_ERROR.ACCESS_VIOLATION ? 'warn' : 'info';
      log[level]('request refused', { peer, file: req.filename, path: target.path, reason: target.reason });
      tftpRequestFailed(target.code);
      this.replyError(rinfo, target.code, CLIENT_MESSAGE[target.code] ?? target.reason);
      return;
    }
    if (this.state !== 'serving') {
      this.drop(peer, rinfo.address);
      await target.source.close().catch(() => undefined);
      this.replyError(rinfo, TFTP_ERROR.NOT_DEFINED, 'server shutting down');
      return;
    }
    let link: TransferLink | null = null;
    try {
      // Only iPXE scripts skip the OACK: a generated GRUB configuration (Secure Boot chain) must be
      // negotiated, as GRUB 2.06 takes the file's size from the OACK's tsize (without one it reads nothing).
      const n = negotiate(req.options, limits, target.source.size, declineOptions(target.generated && target.path.endsWith('.ipxe'), target.source.size));
      link = this.links !== null ? this.links.open(bind, client) : new DgramLink(await bindSocket(bind, 0, client), client);
      if (this.state !== 'serving') throw new Error('server stopping');
      const lastBlock = lastBlockFor(target.source.size, n.blockSize);
      // Asking costs two system calls on the way to the first packet; a window this small fits the
      // usual default, and a full buffer is handled anyway (the rest goes out when writable).
      const sendBuffer = n.windowSize * (n.blockSize + 64);
      if (sendBuffer > SMALL_SEND_BUFFER && sendBuffer > link.sendBufferSize()) trySetSendBuffer(link, sendBuffer);
      const tlog = log.child({ peer, file: target.path });
      const machine = new TransferMachine({
        lastBlock,
        windowSize: n.windowSize,
        retries: limits.retries,
        oack: n.reply.length > 0,
        timeoutMs: n.timeoutMs,
        maxTimeoutMs: MAX_RETRANSMIT_INTERVAL_MS,
      });
      const ring = new BlockRing(target.source, n.blockSize, lastBlock, n.windowSize, this.links?.readCached, this.budget);
      const maxLifetimeMs = this.opts.maxSessionMs ?? DEFAULT_MAX_SESSION_MS;
      const session = new TftpSession({ link, machine, source: target.source, ring, oack: n.reply, log: tlog, maxLifetimeMs });
      this.slots.set(peer, { kind: 'session', session });
      // The log line (a synchronous write when stdout is a pipe) waits until the client's answer
      // to the first packet has been dealt with: with the chain, until DATA 1 is out.
      session.afterFirstTurn(() => {
        if (session.evicted) return; // it never started, as far as its client is concerned
        tlog.info('transfer started', {
          resolved: target.resolvedPath,
          virtual: target.virtual,
          mode,
          size: target.source.size,
          blockSize: n.blockSize,
          windowSize: n.windowSize,
          timeoutMs: n.timeoutMs,
          options: n.reply,
          ...(n.ignored.length > 0 ? { ignoredOptions: n.ignored } : {}),
        });
      });
      session.start();
      tftpTransferStarted();
      void session.done.then((end) => this.finished(peer, rinfo.address, session, target, end, tlog));
    } catch (err) {
      link?.close();
      await target.source.close().catch(() => undefined);
      throw err;
    }
  }

  private finished(peer: string, address: string, session: TftpSession, target: Target, end: SessionEnd, log: Logger): void {
    this.drop(peer, address, session);
    tftpTransferEnded(end.outcome, end.bytes, end.retransmits, end.durationMs);
    if (session.evicted) return; // logged (rate-limited) when evicted
    const fields = { outcome: end.outcome, reason: end.reason, bytes: end.bytes, durationMs: Math.round(end.durationMs), retransmits: end.retransmits };
    if (end.outcome === 'complete') {
      log.info('transfer complete', fields);
      // Only netboot/ paths name a machine, so only they can consume a `once` boot; files in the
      // root are the same for everyone and the server has nothing to learn from them.
      if (!target.virtual) return;
      const [address, port] = splitPeer(peer);
      try {
        this.opts.hooks.fetched({ path: target.path, resolvedPath: target.resolvedPath, address, port, bytes: end.bytes, durationMs: end.durationMs });
      } catch (err) {
        log.warn('fetched hook failed', { err });
      }
    } else if (end.outcome === 'refused') {
      log.info('transfer ended by the client after the OACK', fields);
    } else {
      log.warn('transfer ended early', fields);
    }
  }

  /**
   * Takes a slot for a new request, or refuses it past a bound (issue 16): transfers from this
   * address, transfers overall, the buffer budget. At a cap, the oldest transfer whose client
   * never answered (from that address, or any) gives way first: a forged request cannot answer,
   * so a flood of them cannot lock real clients out, and one that did answer is never evicted.
   * A refusal is an ERROR to the client and a log line, rate-limited per bound.
   */
  private admit(peer: string, rinfo: Peer, file: string): boolean {
    const max = this.opts.maxTransfers ?? DEFAULT_MAX_TRANSFERS;
    const perClient = this.opts.maxTransfersPerClient ?? DEFAULT_MAX_TRANSFERS_PER_CLIENT;
    const fromClient = this.perClient.get(rinfo.address) ?? 0;
    let refusal: { kind: string; reason: string; code: number; message: string } | null = null;
    if (fromClient >= perClient) {
      const cap = `[mtftp] max_transfers_per_client = ${perClient}`;
      if (!this.evictOldest(rinfo.address, cap, peer)) {
        refusal = { kind: 'max_transfers_per_client', reason: `${fromClient} transfers running for ${rinfo.address} (${cap})`, code: TFTP_ERROR.NOT_DEFINED, message: 'server busy: too many transfers from your address, try again later' };
      }
    } else if (this.slots.size >= max) {
      const cap = `[mtftp] max_transfers = ${max}`;
      if (!this.evictOldest(null, cap, peer)) {
        refusal = { kind: 'max_transfers', reason: `${this.slots.size} transfers running (${cap})`, code: TFTP_ERROR.NOT_DEFINED, message: 'server busy: too many transfers, try again later' };
      }
    } else if (this.budget.spent) {
      refusal = { kind: 'buffer_budget', reason: `transfer buffers hold ${this.budget.usedBytes} of ${this.budget.limitBytes} bytes`, code: TFTP_ERROR.DISK_FULL, message: 'server busy: out of transfer buffer memory, try again later' };
    }
    if (refusal !== null) {
      this.refusals.refused(refusal.kind, 'request refused', { peer, file: file.slice(0, 128), reason: refusal.reason });
      this.replyError(rinfo, refusal.code, refusal.message);
      return false;
    }
    this.slots.set(peer, PENDING);
    this.perClient.set(rinfo.address, (this.perClient.get(rinfo.address) ?? 0) + 1);
    return true;
  }

  /** Ends the oldest transfer (from `address`, or any) whose client never answered; false if there is none. */
  private evictOldest(address: string | null, cap: string, newcomer: string): boolean {
    for (const [peer, slot] of this.slots) {
      if (slot.kind !== 'session' || slot.session.hasAnswered()) continue;
      const [from] = splitPeer(peer);
      if (address !== null && from !== address) continue;
      const reason = `evicted: its client never answered, ${cap} reached`;
      slot.session.evict(reason);
      this.drop(peer, from, slot.session);
      this.refusals.refused('evicted', 'unanswered transfer evicted', { peer, for: newcomer, reason });
      return true;
    }
    return false;
  }

  /** Frees `peer`'s slot (when `session` is given: only if the slot is still that session's). */
  private drop(peer: string, address: string, session?: TftpSession): void {
    const slot = this.slots.get(peer);
    if (slot === undefined || (session !== undefined && (slot.kind !== 'session' || slot.session !== session))) return;
    this.slots.delete(peer);
    const n = (this.perClient.get(address) ?? 1) - 1;
    if (n > 0) this.perClient.set(address, n);
    else this.perClient.delete(address);
  }

  private replyError(to: Peer, code: number, message: string): void {
    this.replier?.send(errorPacket(code, message), to.port, to.address);
  }
}

function splitPeer(peer: string): [string, number] {
  const i = peer.lastIndexOf(':');
  return [peer.slice(0, i), Number(peer.slice(i + 1))];
}

function trySetSendBuffer(link: TransferLink, bytes: number): void {
  try {
    link.setSendBufferSize(bytes); // the kernel caps it at net.core.wmem_max
  } catch {
    // Not fatal: a full buffer only queues sends in libuv.
  }
}
