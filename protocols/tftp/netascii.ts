// Netascii (RFC 1350, after the Telnet NVT of RFC 854): a bare LF becomes CR LF and a bare CR
// becomes CR NUL, so a receiver that reverses both gets the original bytes back. Pure.

const CR = 0x0d;
const LF = 0x0a;

export function netasciiLength(src: Buffer): number {
  let extra = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i];
    if (b === LF || b === CR) extra++;
  }
  return src.length + extra;
}

export function toNetascii(src: Buffer): Buffer {
  const out = Buffer.allocUnsafe(netasciiLength(src));
  let o = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i] as number;
    if (b === LF) {
      out[o++] = CR;
      out[o++] = LF;
    } else if (b === CR) {
      out[o++] = CR;
      out[o++] = 0;
    } else {
      out[o++] = b;
    }
  }
  return out;
}
