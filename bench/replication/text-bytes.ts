/** Deterministic "text": words from a small vocabulary, like configuration and logs. */
export function textBytes(n: number, seed: number): Buffer {
  const words = ['driver', 'service', 'enable', 'true', 'false', 'path', '/usr/lib', 'version', '1.0.3', 'network', 'eth0', 'dhcp', 'boot', 'kernel', 'module', '=', '\n', '#', 'option', 'value'];
  let x = seed >>> 0 || 1;
  const out: string[] = [];
  let len = 0;
  while (len < n) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const w = words[(x >>> 0) % words.length]!;
    out.push(w, ' ');
    len += w.length + 1;
  }
  return Buffer.from(out.join('').slice(0, n));
}
