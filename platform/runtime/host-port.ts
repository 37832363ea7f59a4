// The one parser of `host` and `host:port` (a peer's address in [[peers]], a replicateTo target),
// shared by the config loader and the peer links, so what `netboot config check` accepts is what
// the links can dial. IPv4 only, like the rest of the product: a host is a dotted quad or a DNS
// name (RFC 1123 labels); a port is 1-65535 (a peer cannot be dialled on port 0).

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type HostPortResult = ({ readonly ok: true } & HostPort) | { readonly ok: false; readonly reason: string };

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Why `host` is not an IPv4 address or a DNS name, or null when it is one. */
export function hostProblem(host: string): string | null {
  if (host === '') return 'the host is empty';
  if (/^[\d.]+$/.test(host)) {
    const parts = host.split('.');
    return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255) ? null : `${host} is not an IPv4 address`;
  }
  if (host.length > 253) return 'the host name is longer than 253 characters';
  const labels = host.replace(/\.$/, '').split('.');
  return labels.every((l) => LABEL.test(l)) ? null : `${host} is not a host name (letters, digits and inner hyphens, in dot-separated labels of 1-63)`;
}

/** `host` or `host:port`; `defaultPort` when the port is left out. Never throws. */
export function parseHostPort(text: string, defaultPort: number): HostPortResult {
  const i = text.lastIndexOf(':');
  const host = i < 0 ? text : text.slice(0, i);
  if (host.includes(':') || host.startsWith('[')) return { ok: false, reason: 'must be host or host:port (IPv6 is not supported)' };
  const bad = hostProblem(host);
  if (bad !== null) return { ok: false, reason: bad };
  if (i < 0) return { ok: true, host, port: defaultPort };
  const portText = text.slice(i + 1);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return { ok: false, reason: `port ${portText === '' ? '(empty)' : portText} is not from 1 to 65535` };
  }
  return { ok: true, host, port: Number(portText) };
}

/** `host:port` with the default port filled in; the text unchanged when it does not parse. */
export function withDefaultPort(text: string, defaultPort: number): string {
  const r = parseHostPort(text, defaultPort);
  return r.ok ? `${r.host}:${r.port}` : text;
}
