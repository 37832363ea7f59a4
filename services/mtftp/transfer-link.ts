// The socket side of one transfer: a connected UDP socket (the server's TID) behind one small
// interface, with two implementations. `DgramLink` is plain node:dgram (the pure-JS path, always
// available). `NativeLink` (native-link.ts) owns its socket in our addon and sends a whole window
// per system call (UDP GSO or sendmmsg). The session decides what to send; a link only moves bytes.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { BlockRing } from './block-ring.ts';

export interface Peer {
  readonly address: string;
  readonly port: number;
}

export interface LinkEvents {
  /**
   * A datagram from the peer: its bytes are buf[0..length) (valid only during the call).
   * `presend`: -1, or the blocks of the armed run the link sent as this datagram came in.
   */
  datagram(buf: Buffer, length: number, presend: number): void;
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
  /**
   * A predicted turn: when the next datagram is exactly `expect`, send ring blocks first..last
   * right away, before the event reaches JS. Any datagram disarms it. Returns whether it is armed
   * (node:dgram cannot: it always returns false).
   */
  arm(expect: Buffer, ring: BlockRing, first: number, last: number): boolean;
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
      events.datagram(msg, msg.length, -1);
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

  arm(): boolean {
    return false;
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
