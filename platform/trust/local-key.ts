// The local secret: what proves a connection on the state feed (/feed on TCP 490) or the Signal
// port comes from one of our own processes. Loopback alone proves nothing: any local user can
// connect to it. The secret lives in <data>/run/local.key, mode 0600, owned by the user the
// services run as, so only that user (and root) can read it: the same boundary as the control
// sockets beside it. The first service to start creates it (32 random bytes, hex); the others
// read the same file. It is presented through the challenge-response of peer-handshake.ts, never
// sent as such.
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetbootError, errorMessage } from '../runtime/errors.ts';
import { ClientHandshake } from './peer-handshake.ts';

/** The id a local process gives in its hello, and the one the serving process answers with. */
export const LOCAL_CLIENT_ID = 'local';
export const LOCAL_SERVER_ID = 'netboot-local';

export function localKeyPath(dataDir: string): string {
  return join(dataDir, 'run', 'local.key');
}

/** The local secret of one data folder; read (or created) on first use, then kept. */
export class LocalKey {
  private key: Buffer | null = null;

  constructor(readonly path: string) {}

  static of(dataDir: string): LocalKey {
    return new LocalKey(localKeyPath(dataDir));
  }

  get(): Buffer {
    this.key ??= loadOrCreate(this.path);
    return this.key;
  }
}

function loadOrCreate(path: string): Buffer {
  const dir = join(path, '..');
  mkdirSync(dir, { recursive: true }); // as the control sockets' folder: the file's own mode guards the key
  try {
    return readKey(path);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
  }
  // Written whole under a temporary name, then linked into place: a process starting at the same
  // moment either sees no file or the complete one, and exactly one of them wins the link.
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600); // the umask cannot have widened it, but say so
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
  } catch (err) {
    throw new NetbootError('LOCAL_KEY_UNWRITABLE', `local key ${path}: ${errorMessage(err)}`);
  } finally {
    rmSync(tmp, { force: true });
  }
  return readKey(path);
}

function readKey(path: string): Buffer {
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) {
    throw new NetbootError('LOCAL_KEY_EXPOSED', `local key ${path} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); remove it and restart the services to make a new one, or chmod 600 it`);
  }
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new NetbootError('LOCAL_KEY_MALFORMED', `local key ${path}: not 64 hex digits; remove it and restart the services to make a new one`);
  return Buffer.from(text, 'hex');
}

/** The client side of the local proof, fresh for each connection (a new nonce each time). */
export function localProof(key: LocalKey): () => ClientHandshake {
  return () => new ClientHandshake(key.get(), LOCAL_CLIENT_ID, LOCAL_SERVER_ID);
}
