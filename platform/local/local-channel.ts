// The local channel: requests between services on one host where a machine waits for the answer
// (MTFTP asks the PXE server about every netboot/ file). One Unix stream connection kept open,
// one JSON line per message (json-lines.ts), replies matched by `id`, any number in flight.
// The control socket's HTTP cost about 0.4 ms a call here, with tails of several ms (headers, the
// parser, the agent's socket pool); this costs about 0.08 ms. Like the control socket it lives in
// <data>/run/, so only local users with access to the data folder reach it.
//   request {id, op, body}   reply {id, ok: true, body} | {id, ok: false, error}
//   push    {id: 0, push: topic, body}   (server to client, unasked; ids of requests start at 1)
// A push goes to a connection that asked to follow something (`ChannelClient.follow`); it arrives
// after that request's reply, in the order the server sent it.
import { mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { NetbootError, ProtocolError, errorMessage } from '../runtime/errors.ts';
import { LineSplitter, decodeMessage, encodeLine } from './json-lines.ts';
import type { Lifecycle } from '../runtime/lifecycle.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ServiceName } from './control.ts';

export function channelSocketPath(dataDir: string, service: ServiceName): string {
  return join(dataDir, 'run', `${service}.channel.sock`);
}

/**
 * Returns the reply body (or a promise of it); a thrown NetbootError is a refusal sent back.
 * `peer` is the asking connection, for handlers that push to it later.
 */
export type ChannelHandler = (body: unknown, peer: ChannelPeer) => unknown;

/** One client connection, as a handler sees it. */
export class ChannelPeer {
  constructor(private readonly socket: Socket) {}

  get open(): boolean {
    return this.socket.writable;
  }

  push(topic: string, body: unknown): void {
    send(this.socket, { id: 0, push: topic, body });
  }

  onClose(fn: () => void): void {
    this.socket.once('close', fn);
  }
}

export class ChannelServer implements Lifecycle {
  private server: Server | null = null;
  private readonly connections = new Set<Socket>();

  constructor(
    private readonly socketPath: string,
    private readonly routes: Readonly<Record<string, ChannelHandler>>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    mkdirSync(dirname(this.socketPath), { recursive: true });
    rmSync(this.socketPath, { force: true }); // a stale socket from a crashed run
    const server = createServer((c) => this.onConnection(c));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    server.on('error', (err) => this.log.error('channel socket error', { err }));
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    for (const c of this.connections) c.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  private onConnection(c: Socket): void {
    this.connections.add(c);
    const peer = new ChannelPeer(c);
    const lines = new LineSplitter();
    c.on('close', () => this.connections.delete(c));
    c.on('error', (err) => this.log.debug('channel connection error', { reason: errorMessage(err) }));
    c.on('data', (chunk: Buffer) => {
      let got: Buffer[];
      try {
        got = lines.push(chunk);
      } catch (err) {
        // The framing is lost: nothing more on this connection can be trusted.
        this.log.warn('channel connection dropped', { reason: errorMessage(err) });
        c.destroy();
        return;
      }
      for (const line of got) this.onLine(c, peer, line);
    });
  }

  private onLine(c: Socket, peer: ChannelPeer, line: Buffer): void {
    let msg;
    try {
      msg = decodeMessage(line);
    } catch (err) {
      this.log.warn('channel message dropped', { reason: errorMessage(err), bytes: line.length });
      return;
    }
    const { id } = msg;
    const handler = typeof msg.op === 'string' ? this.routes[msg.op] : undefined;
    if (handler === undefined) return send(c, { id, ok: false, error: `no such operation: ${JSON.stringify(msg.op)}` });
    let result: unknown;
    try {
      result = handler(msg.body, peer);
    } catch (err) {
      return this.refuse(c, id, msg.op as string, err);
    }
    // The answer goes out in this same turn of the event loop when the handler is synchronous.
    if (result instanceof Promise) result.then((body: unknown) => send(c, { id, ok: true, body }), (err: unknown) => this.refuse(c, id, msg.op as string, err));
    else send(c, { id, ok: true, body: result });
  }

  private refuse(c: Socket, id: number, op: string, err: unknown): void {
    if (!(err instanceof NetbootError)) this.log.error('channel request failed', { op, err });
    send(c, { id, ok: false, error: errorMessage(err) });
  }
}

function send(c: Socket, reply: unknown): void {
  if (c.writable) c.write(encodeLine(reply));
}

interface Follower {
  readonly socket: Socket;
  readonly onPush: (topic: string, body: unknown) => void;
  readonly onLost: (reason: string) => void;
}

interface Pending {
  readonly resolve: (body: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly socket: Socket;
}

/** The connection closed (or never opened) before the reply came. */
export class ChannelClosed extends NetbootError {
  constructor(message: string) {
    super('CHANNEL_CLOSED', message);
  }
}

export class ChannelClient {
  private socket: Socket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private followers: Follower[] = [];

  constructor(
    private readonly socketPath: string,
    private readonly timeoutMs = 2000,
  ) {}

  /**
   * One request. A connection the server closed (it restarted) fails the call once; it is then
   * made again on a new connection, so handlers must tolerate a repeat.
   */
  async call<T>(op: string, body: unknown): Promise<T> {
    try {
      return (await this.once(op, body)) as T;
    } catch (err) {
      if (!(err instanceof ChannelClosed)) throw err;
      return (await this.once(op, body)) as T;
    }
  }

  /**
   * A request whose reply starts a stream of pushes on this connection: `onPush` gets each one,
   * `onLost` is called once when the connection ends (then follow again). No retry here.
   */
  async follow(op: string, body: unknown, onPush: (topic: string, body: unknown) => void, onLost: (reason: string) => void): Promise<unknown> {
    const socket = this.connection();
    const follower: Follower = { socket, onPush, onLost };
    this.followers.push(follower);
    try {
      return await this.once(op, body, socket);
    } catch (err) {
      this.followers = this.followers.filter((f) => f !== follower);
      throw err;
    }
  }

  /** Drops the connection; calls in flight fail. */
  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private connection(): Socket {
    return this.socket !== null && !this.socket.destroyed ? this.socket : this.open();
  }

  private once(op: string, body: unknown, socket = this.connection()): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new NetbootError('CHANNEL_TIMEOUT', `${this.socketPath}: no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer, socket });
      socket.write(encodeLine({ id, op, body })); // queued by net until connected
    });
  }

  private open(): Socket {
    const socket = connect(this.socketPath);
    // Never what keeps a process alive: its own sockets and timers decide that.
    socket.unref();
    this.socket = socket;
    const lines = new LineSplitter();
    let reason = 'connection closed';
    socket.on('error', (err) => (reason = errorMessage(err)));
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      for (const [id, p] of this.pending) {
        if (p.socket !== socket) continue;
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new ChannelClosed(`${this.socketPath}: ${reason}`));
      }
      const lost = this.followers.filter((f) => f.socket === socket);
      this.followers = this.followers.filter((f) => f.socket !== socket);
      for (const f of lost) f.onLost(reason);
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const line of lines.push(chunk)) this.onMessage(socket, line);
      } catch (err) {
        reason = `bad reply: ${errorMessage(err)}`;
        socket.destroy();
      }
    });
    return socket;
  }

  private onMessage(socket: Socket, line: Buffer): void {
    const msg = decodeMessage(line);
    if (msg.id === 0) {
      if (typeof msg.push !== 'string') throw new ProtocolError('channel', 'a push without a topic');
      for (const f of this.followers) if (f.socket === socket) f.onPush(msg.push, msg.body);
      return;
    }
    const p = this.pending.get(msg.id);
    if (p === undefined) return; // timed out already
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok === true) p.resolve(msg.body);
    else p.reject(new NetbootError('CHANNEL_REFUSED', typeof msg.error === 'string' ? msg.error : 'refused'));
  }
}
