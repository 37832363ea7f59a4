// One bound UDP socket of the PXE server, as the transport sees it, whichever path carries it:
// node:dgram (here) or the native batching addon (batch-socket.ts). Both bind with SO_BROADCAST,
// SO_REUSEADDR only when asked, and deliver each datagram as a Buffer of its own with its source.
import { createSocket, type RemoteInfo, type SocketOptions } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../../platform/runtime/errors.ts';

export interface Peer {
  readonly address: string;
  readonly port: number;
}

export interface DatagramEvents {
  /**
   * A datagram, in a Buffer the receiver may keep. `receivedAt`: performance.now() when it was
   * taken from the socket (native path: one reading for the whole batch it came in).
   */
  datagram(message: Buffer, from: Peer, receivedAt: number): void;
  /**
   * After the datagrams of one received batch (native path) or after each datagram (node:dgram):
   * the replies sent while handling them have left.
   */
  batchEnd(): void;
  /** A datagram too long to be taken whole (native path): `length` is its real length. */
  oversize(length: number, from: Peer): void;
  /** A socket error: most often a reply the kernel refused. */
  error(message: string): void;
}

export interface DhcpSocket {
  readonly port: number;
  /**
   * Sends at once, or (native path, inside a batch) when the batch is done. No completion
   * callback. A send the kernel refuses is an `error` event on the native path; node:dgram tells
   * of it only to a per-send callback (a JS call per reply), so there it goes unseen.
   */
  send(message: Buffer, to: Peer): void;
  close(): Promise<void>;
}

/**
 * dgram resolves every destination before sending, even an address, through dns.lookup, which
 * answers on the next tick: the reply would leave only after the handler has finished (its log
 * record included). Destinations here are always dotted quads, so the answer is immediate and
 * send() reaches the kernel at once.
 */
const literalLookup = ((address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void => {
  if (isIPv4(address)) callback(null, address, 4);
  else callback(new Error(`not an IPv4 address: ${address}`), address, 4);
}) as unknown as SocketOptions['lookup'];

export async function openDgramSocket(address: string, port: number, reuseAddr: boolean, events: DatagramEvents): Promise<DhcpSocket> {
  const socket = createSocket({ type: 'udp4', reuseAddr, lookup: literalLookup });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.setBroadcast(true);
  socket.on('error', (err) => events.error(errorMessage(err)));
  // rinfo is a fresh object per datagram, with address and port: it is the Peer.
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    events.datagram(msg, rinfo, performance.now());
    events.batchEnd();
  });
  return {
    port: socket.address().port,
    send: (message, to) => socket.send(message, to.port, to.address),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
