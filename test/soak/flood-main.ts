// The soak test's attacker, as its own process so that it can run inside a network namespace of
// the test LAN. Two modes; each prints one JSON line per step on stdout and then holds what it
// made (sockets, connections) until it is killed:
//   udp HOST PORT FILE COUNT BATCH  COUNT TFTP read requests for FILE asking for the largest
//                                   options (blksize 65464, windowsize 64, timeout 255), each
//                                   from its own socket (its own source port), BATCH every 100 ms;
//                                   never acknowledges anything.
//   tcp HOST PORT COUNT              COUNT TCP connections that never send a byte.
// Usage: node --import tsx flood-main.ts udp|tcp ...
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';

const [mode, ...args] = process.argv.slice(2);

function say(fields: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

/** RFC 1350 RRQ with RFC 2347 options: blksize (RFC 2348), timeout (RFC 2349), windowsize (RFC 7440). */
function readRequest(file: string): Buffer {
  const parts = [file, 'octet', 'blksize', '65464', 'windowsize', '64', 'timeout', '255'];
  return Buffer.concat([Buffer.from([0, 1]), ...parts.map((p) => Buffer.from(`${p}\0`, 'ascii'))]);
}

async function udp(host: string, port: number, file: string, count: number, batch: number): Promise<void> {
  const rrq = readRequest(file);
  const sockets: UdpSocket[] = [];
  const replies = { oack: 0, data: 0, error: 0, other: 0 };
  let sendErrors = 0;
  for (let sent = 0; sent < count;) {
    const upTo = Math.min(count, sent + batch);
    for (; sent < upTo; sent++) {
      const s = createSocket('udp4');
      sockets.push(s);
      s.on('error', () => void sendErrors++);
      s.on('message', (msg) => {
        const op = msg.length >= 2 ? msg.readUInt16BE(0) : 0;
        if (op === 6) replies.oack++;
        else if (op === 3) replies.data++;
        else if (op === 5) replies.error++;
        else replies.other++;
      });
      s.send(rrq, port, host, (err) => {
        if (err) sendErrors++;
      });
    }
    await new Promise((r) => setTimeout(r, 100)); // part of the scenario: the flood comes in bursts
  }
  say({ udp: 'done', requests: count, sendErrors });
  setInterval(() => say({ udp: 'replies', ...replies, sendErrors }), 1000);
}

async function tcp(host: string, port: number, count: number): Promise<void> {
  const state = { open: 0, refused: 0, closedByPeer: 0, connecting: 0 };
  const conns: Socket[] = [];
  let settled = 0;
  let allSettled: () => void = () => undefined;
  const settledAll = new Promise<void>((resolve) => (allSettled = resolve));
  const settle = (): void => {
    if (++settled === count) allSettled();
  };
  // Fired 500 every 100 ms without waiting for each: a server that stops accepting lets the
  // kernel drop SYNs, which are retried for minutes; the summary counts those as `connecting`.
  for (let made = 0; made < count;) {
    for (const upTo = Math.min(count, made + 500); made < upTo; made++) {
      const c = connect({ host, port });
      conns.push(c);
      let opened = false;
      state.connecting++;
      c.once('connect', () => {
        opened = true;
        state.connecting--;
        state.open++;
        settle();
      });
      c.on('error', () => {
        // ECONNREFUSED, ECONNRESET: counted through close
      });
      c.once('close', () => {
        if (opened) {
          state.open--;
          state.closedByPeer++;
        } else {
          state.connecting--;
          state.refused++;
          settle();
        }
      });
    }
    await new Promise((r) => setTimeout(r, 100)); // part of the scenario: the flood comes in bursts
  }
  await Promise.race([settledAll, new Promise((r) => setTimeout(r, 15_000))]);
  say({ tcp: 'done', attempted: count, ...state });
  setInterval(() => say({ tcp: 'held', ...state }), 1000);
}

if (mode === 'udp' && args.length === 5) {
  await udp(args[0]!, Number(args[1]), args[2]!, Number(args[3]), Number(args[4]));
} else if (mode === 'tcp' && args.length === 3) {
  await tcp(args[0]!, Number(args[1]), Number(args[2]));
} else {
  process.stderr.write('usage: flood-main.ts udp HOST PORT FILE COUNT BATCH | tcp HOST PORT COUNT\n');
  process.exit(2);
}
