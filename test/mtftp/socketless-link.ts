// A TransferLink that owns no socket, for driving a TftpSession where the condition a test is
// about cannot be produced on loopback (a full send buffer, a turn taken natively). It records
// what leaves and takes every block it is given; tests extend it with what they script.
import type { BlockRing } from '../../services/mtftp/block-ring.ts';
import { writeAck } from '../../protocols/tftp/tftp-codec.ts';
import type { LinkEvents, TransferLink } from '../../services/mtftp/transfer-link.ts';

export class SocketlessLink implements TransferLink {
  readonly kind = 'sendmmsg';
  events: LinkEvents | null = null;
  /** Single datagrams (OACK, ERROR) as they left. */
  readonly packets: Buffer[] = [];
  /** Block numbers sent by sendBlocks, in order (read from each DATA header). */
  readonly sent: number[] = [];
  closed = false;

  listen(events: LinkEvents): void {
    this.events = events;
  }
  send(packet: Buffer): void {
    this.packets.push(Buffer.from(packet));
  }
  sendBlocks(ring: BlockRing, first: number, last: number): number {
    for (let b = first; b <= last; b++) this.sent.push(ring.packet(b).readUInt16BE(2));
    return last - first + 1;
  }
  holdsBuffers(): boolean {
    return false;
  }
  sendBufferSize(): number {
    return 1 << 20;
  }
  setSendBufferSize(): void {}
  close(): void {
    this.closed = true;
  }

  /** The client's ACK of block `n` arrives. */
  ack(n: number): void {
    const b = Buffer.alloc(4);
    writeAck(b, n);
    this.events?.datagram(b, 4);
  }
}
