// Which of our addresses the kernel uses toward a destination: connect a UDP socket to it (no
// packet is sent) and read the socket's local address. Node's dgram has no routing-table query,
// but this asks the same question the kernel answers for every reply we send there.
import { createSocket } from 'node:dgram';
import { NetbootError, errorMessage } from '../../platform/runtime/errors.ts';

export type RouteSource = (destination: string) => Promise<string>;

export function routeSource(destination: string): Promise<string> {
  const socket = createSocket('udp4');
  return new Promise<string>((resolve, reject) => {
    const fail = (err: unknown): void => reject(new NetbootError('NO_ROUTE', `no route toward ${destination}: ${errorMessage(err)}`));
    socket.once('error', fail);
    socket.bind(0, () => {
      // Connecting to a broadcast address needs SO_BROADCAST (EACCES otherwise).
      socket.setBroadcast(true);
      socket.connect(67, destination, (err?: Error) => {
        if (err !== undefined && err !== null) return fail(err);
        try {
          resolve(socket.address().address);
        } catch (e) {
          fail(e);
        }
      });
    });
  }).finally(() => {
    try {
      socket.close();
    } catch {
      // already closed by a failed bind
    }
  });
}
