// The socket side of one transfer: a connected UDP socket (the server's TID) behind one small
// interface, with two implementations. `DgramLink` is plain node:dgram (the pure-JS path, always
// available). `NativeLink` (native-link.ts) owns its socket in our addon and sends a whole window
// per system call (UDP GSO or sendmmsg), and can take lock-step turns without JS (its optional
// `turns`, turn-chain.ts). The session decides what to send; a link only moves bytes.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { BlockRing } from './block-ring.ts';
import type { TurnTaker } from './turn-chain.ts';

export interface Peer {
  readonly address: string;
  readonly port: number;
}

export interface LinkEvents {
  /** A datagram from the peer, in buf[0..length) (valid only during the call). */
  datagram(buf: Buffer, length: number): void;
  /** The socket failed (e.g. ICMP port unreachable as ECONNREFUSED): the peer is gone. */
  error(err: Error): void;
  /** Sending is possible again after sendBlocks sent fewer blocks than asked. */
  writable(): void;
}

export interface TransferLink {
  readonly kind: 'dgram' | 'gso' | 'sendmmsg';
  listen(events: LinkEvents): void;
  /** One datagram (OACK, ERROR). */
  send(packet: Buffer): void;
  /** Sends resident blocks first..last of the ring; returns how many went out (the rest: wait for writable). */
  sendBlocks(ring: BlockRing, first: number, last: number): number;
  /** Lock-step turns the link takes without JS, where it can (the native link; not node:dgram). */
  readonly turns?: TurnTaker;
  /** Whether the socket still holds references to ring buffers (queued sends). */
  holdsBuffers(): boolean;
  sendBufferSize(): number;
  setSendBufferSize(bytes: number): void;
  close(): void;
}

export class DgramLink implements TransferLink {
  readonly kind = 'dgram';

  constructor(
    private readonly socket: Socket,
    private readonly peer: Peer,
  ) {}

  listen(events: LinkEvents): void {
    this.socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (rinfo.port !== this.peer.port || rinfo.address !== this.peer.address) return; // cannot happen on a connected socket
      events.datagram(msg, msg.length);
    });
    this.socket.on('error', (err) => events.error(err));
  }

  send(packet: Buffer): void {
    this.socket.send(packet);
  }

  sendBlocks(ring: BlockRing, first: number, last: number): number {
    // libuv queues what the kernel does not take and sends it once writable: never partial here.
    for (let n = first; n <= last; n++) this.socket.send(ring.packet(n));
    return last - first + 1;
  }

  holdsBuffers(): boolean {
    return this.socket.getSendQueueCount() > 0;
  }

  sendBufferSize(): number {
    return this.socket.getSendBufferSize();
  }

  setSendBufferSize(bytes: number): void {
    this.socket.setSendBufferSize(bytes);
  }

  close(): void {
    this.socket.close();
  }
}

/** A datagram on the request socket: bytes buf[0..length) (valid only during the call), and its sender. */
export type RequestHandler = (buf: Buffer, length: number, address: string, port: number) => void;

/** The TFTP port's socket: node:dgram here, or our addon's (NativeLinks.listen). */
export interface RequestSocket {
  readonly port: number;
  close(): void;
}

export async function listenDgram(address: string, port: number, onDatagram: RequestHandler, onError: (err: Error) => void): Promise<RequestSocket> {
  const socket = await bindSocket(address, port);
  socket.on('error', onError);
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => onDatagram(msg, msg.length, rinfo.address, rinfo.port));
  return { port: socket.address().port, close: () => socket.close() };
}

/** A node:dgram socket bound to address:port, connected to `peer` when given. */
export function bindSocket(address: string, port: number, peer?: Peer): Promise<Socket> {
  const socket = createSocket({ type: 'udp4' });
  return new Promise<Socket>((resolve, reject) => {
    const fail = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', fail);
    socket.bind({ port, address, exclusive: true }, () => {
      if (peer === undefined) {
        socket.removeListener('error', fail);
        resolve(socket);
        return;
      }
      socket.connect(peer.port, peer.address, () => {
        socket.removeListener('error', fail);
        resolve(socket);
      });
    });
  });
}
