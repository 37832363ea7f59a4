// A reference point, not a server: the least a Node process can do per proxyDHCP exchange. It
// answers each request on 67/4011 with the request itself turned into a reply (op 2, option 53
// OFFER/ACK; the load client puts 53 first), decoding nothing. Its CPU per reply is Node's
// datagram floor on this machine, which netboot's figure is read against.
import { createSocket } from 'node:dgram';

for (const port of [67, 4011]) {
  const s = createSocket('udp4');
  s.bind(port, '0.0.0.0', () => s.setBroadcast(true));
  s.on('message', (msg, rinfo) => {
    if (msg.length < 243 || msg[240] !== 53) return;
    msg[0] = 2;
    msg[242] = msg[242] === 1 ? 2 : 5;
    msg[108] = 0x78; // a one-letter file name, so the client's spot checks pass
    if (port === 67) s.send(msg, 68, '255.255.255.255');
    else s.send(msg, rinfo.port, rinfo.address);
  });
}
process.on('SIGTERM', () => process.exit(0));
