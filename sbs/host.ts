// Peer addresses for `replicateTo`: `host` or `host:port`. A host is a DNS name (RFC 1123
// labels), an IPv4 address, or an IPv6 address in brackets (bare IPv6 would be ambiguous with
// the port). Normalised to lower case.
import { isIP } from 'node:net';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** The normalised `host[:port]`, or the reason it is not one. */
export function readPeerAddress(s: string): { address: string } | { problem: string } {
  const lower = s.toLowerCase();
  let host = lower;
  let port: string | undefined;
  const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(lower);
  if (bracket !== null) {
    if (isIP(bracket[1]!) !== 6) return { problem: 'must be host or host:port (IPv6 in [brackets])' };
    host = `[${bracket[1]}]`;
    port = bracket[2];
  } else {
    const colon = lower.lastIndexOf(':');
    if (colon >= 0) {
      host = lower.slice(0, colon);
      port = lower.slice(colon + 1);
    }
    if (!isHostName(host)) return { problem: 'must be host or host:port (IPv6 in [brackets])' };
  }
  if (port !== undefined && !/^[0-9]*$/.test(port)) return { problem: 'must be host or host:port (IPv6 in [brackets])' };
  if (port !== undefined && (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    return { problem: 'port must be from 1 to 65535' };
  }
  return { address: port === undefined ? host : `${host}:${Number(port)}` };
}

function isHostName(host: string): boolean {
  if (isIP(host) === 4) return true;
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  // An all-numeric name that is not a valid IPv4 address (e.g. 300.1.2.3) is refused.
  if (labels.every((l) => /^[0-9]+$/.test(l))) return false;
  return labels.every((l) => LABEL.test(l));
}
