// How quickly each server answered, read from a packet capture of the LAN (libpcap, Ethernet, as
// tcpdump writes it): the proxy offer after each DISCOVER, the boot server reply after each 4011
// request, and the first TFTP packet after each read request. The guest's own timers (iPXE
// counts in BIOS ticks of about 55 ms) blur a few ms in the power-on-to-marker time; these do not.
import { readPackets, type Packet } from './pcap.ts';

export interface Latencies {
  /** DISCOVER -> the server's proxy offer (same xid), ms. */
  readonly offer: number[];
  /** Boot server request (4011) -> its reply, ms. */
  readonly bootServer: number[];
  /** TFTP read request -> the server's first packet to that client port, ms. */
  readonly tftpFirst: number[];
  /** The client's ACK 0 (answering the OACK) -> the server's DATA 1, ms. */
  readonly tftpData1: number[];
  /** The ordinary DHCP server's REQUEST -> ACK, ms: the same software on both LANs, a control. */
  readonly dhcpAck: number[];
  /** Per boot, ms: the first DISCOVER -> the client's DHCPREQUEST (about 1 s: QEMU's e1000 holds received frames for 1 s after the guest opens the NIC). */
  readonly choose: number[];
  /** Per boot, ms: that DHCPREQUEST -> the first TFTP read request (the ACK, any 4011 exchange, iPXE's own work). */
  readonly toTftp: number[];
  /** Per boot, ms: the first TFTP read request -> the client's last packet to the server (both files). */
  readonly tftp: number[];
  /** Per boot: the wall-clock time (ms since the epoch) of its first DISCOVER. */
  readonly discoverAt: number[];
}

/** A boot's network phases: from its first DISCOVER (a new xid) to the last packet before the next boot's. */
function phases(packets: readonly Packet[], server: string, result: Latencies): void {
  const isDhcp = (p: Packet, type: number): boolean => p.dport === 67 && p.sport === 68 && p.payload[240] === 53 && p.payload[242] === type;
  const xids = new Set<number>();
  const starts = packets.flatMap((p, i) => {
    if (!isDhcp(p, 1) || xids.has(p.payload.readUInt32BE(4))) return [];
    xids.add(p.payload.readUInt32BE(4));
    return [i];
  });
  starts.forEach((start, k) => {
    const boot = packets.slice(start, starts[k + 1] ?? packets.length);
    const request = boot.find((p) => isDhcp(p, 3));
    const rrq = boot.find((p) => p.dst === server && p.dport === 69 && p.payload.readUInt16BE(0) === 1);
    const last = boot.filter((p) => p.dst === server && p.dport !== 67 && p.dport !== 4011).pop();
    result.discoverAt.push(boot[0]!.t);
    if (request === undefined || rrq === undefined || last === undefined) return;
    result.choose.push(request.t - boot[0]!.t);
    result.toTftp.push(rrq.t - request.t);
    result.tftp.push(last.t - rrq.t);
  });
}

export function serverLatencies(pcap: string, server: string, dhcpServer: string): Latencies {
  const packets = readPackets(pcap).filter((p) => p.proto === 'udp');
  const xid = (p: Packet): number => (p.payload.length >= 8 ? p.payload.readUInt32BE(4) : -1);
  const after = (i: number, match: (p: Packet) => boolean): Packet | undefined => packets.slice(i + 1).find(match);
  const result: Latencies = { offer: [], bootServer: [], tftpFirst: [], tftpData1: [], dhcpAck: [], choose: [], toTftp: [], tftp: [], discoverAt: [] };
  const seenXids = new Set<number>();
  const seenRequests = new Set<number>();
  packets.forEach((p, i) => {
    if (p.dport === 67 && p.sport === 68 && p.payload[240] === 53 && p.payload[242] === 1 && !seenXids.has(xid(p))) {
      // Option 53 = 1 (DISCOVER) right after the magic cookie, as every client here sends it.
      seenXids.add(xid(p));
      const offer = after(i, (q) => q.src === server && q.sport === 67 && xid(q) === xid(p));
      if (offer !== undefined) result.offer.push(offer.t - p.t);
    } else if (p.dport === 67 && p.sport === 68 && p.payload[240] === 53 && p.payload[242] === 3 && !seenRequests.has(xid(p))) {
      seenRequests.add(xid(p));
      const ack = after(i, (q) => q.src === dhcpServer && q.sport === 67 && xid(q) === xid(p));
      if (ack !== undefined) result.dhcpAck.push(ack.t - p.t);
    } else if (p.dst === server && p.dport === 4011) {
      const reply = after(i, (q) => q.src === server && q.sport === 4011 && xid(q) === xid(p));
      if (reply !== undefined) result.bootServer.push(reply.t - p.t);
    } else if (p.dst === server && p.dport === 69 && p.payload.readUInt16BE(0) === 1) {
      const first = after(i, (q) => q.src === server && q.dst === p.src && q.dport === p.sport);
      if (first !== undefined) result.tftpFirst.push(first.t - p.t);
    } else if (p.dst === server && p.payload.length >= 4 && p.payload.readUInt16BE(0) === 4 && p.payload.readUInt16BE(2) === 0) {
      const data1 = after(i, (q) => q.src === server && q.dst === p.src && q.dport === p.sport && q.payload.length >= 4 && q.payload.readUInt16BE(0) === 3);
      if (data1 !== undefined && data1.payload.readUInt16BE(2) === 1) result.tftpData1.push(data1.t - p.t);
    }
  });
  phases(packets, server, result);
  return result;
}
