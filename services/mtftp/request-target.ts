// Which bytes answer a read request: a file in the TFTP root, or, for paths under `netboot/`,
// whatever the PXE server says (a file it names, generated content, or nothing). Netascii
// requests get the converted bytes, built in memory (text files; bounded).
import { isAbsolute } from 'node:path';
import { isUtf8 } from 'node:buffer';
import { errorMessage } from '../../platform/runtime/errors.ts';
import { FileSource, MemorySource, type BlockSource } from './block-ring.ts';
import { VIRTUAL_PREFIX, type BootHooks, type Client } from './boot-hooks.ts';
import { toNetascii } from '../../protocols/tftp/netascii.ts';
import { TFTP_ERROR } from '../../protocols/tftp/tftp-codec.ts';
import { normalizeRequestPath, openRegularFile, type OpenedFile, type Refusal, type TftpRoot } from './tftp-root.ts';

export const NETASCII_MAX_BYTES = 16 * 1024 * 1024;

export interface Target {
  readonly ok: true;
  /** Normalised request path. */
  readonly path: string;
  readonly resolvedPath?: string;
  readonly virtual: boolean;
  /** Generated content (an iPXE script the PXE server made for the machine), not a file. */
  readonly generated: boolean;
  readonly source: BlockSource;
}

export interface Refused extends Refusal {
  /** Normalised request path when it got that far (for the log). */
  readonly path?: string;
}

/** The request's file name bytes (latin1 from the codec) as UTF-8 text, or null. */
export function requestText(filename: string): string | null {
  const bytes = Buffer.from(filename, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : null;
}

export async function resolveTarget(filename: string, mode: 'octet' | 'netascii', client: Client, root: TftpRoot, hooks: BootHooks): Promise<Target | Refused> {
  const text = requestText(filename);
  if (text === null) return { ok: false, code: TFTP_ERROR.ACCESS_VIOLATION, reason: 'file name is not valid UTF-8' };
  const norm = normalizeRequestPath(text);
  if (!norm.ok) return norm;
  const path = norm.path;
  const virtual = path.toLowerCase().startsWith(VIRTUAL_PREFIX);
  let opened: OpenedFile | Refusal;
  if (virtual) {
    let answer;
    try {
      answer = await hooks.resolveVirtual(path, client);
    } catch (err) {
      return { ok: false, code: TFTP_ERROR.FILE_NOT_FOUND, reason: `boot hooks failed: ${errorMessage(err)}`, path };
    }
    if (answer.type === 'none') return { ok: false, code: TFTP_ERROR.FILE_NOT_FOUND, reason: `PXE server: ${answer.reason}`, path };
    if (answer.type === 'content') return finish({ ok: true, path, virtual, generated: true, source: new MemorySource(answer.data) }, mode);
    // A file the server names: absolute paths are its own (package store); relative ones are in the root.
    opened = isAbsolute(answer.path) ? openRegularFile(answer.path, null) : root.open(answer.path);
  } else {
    opened = root.openSegments(norm.segments);
  }
  if (!opened.ok) return { ...opened, path };
  return finish({ ok: true, path, virtual, generated: false, resolvedPath: opened.realPath, source: new FileSource(opened.fd, opened.size) }, mode);
}

async function finish(target: Target, mode: 'octet' | 'netascii'): Promise<Target | Refused> {
  if (mode === 'octet') return target;
  const { source } = target;
  try {
    if (source.size > NETASCII_MAX_BYTES) {
      return { ok: false, code: TFTP_ERROR.NOT_DEFINED, reason: `netascii is limited to files of ${NETASCII_MAX_BYTES} bytes (use octet)`, path: target.path };
    }
    const raw = Buffer.allocUnsafe(source.size);
    const got = source.size === 0 ? 0 : await source.readv([raw], 0);
    if (got !== source.size) return { ok: false, code: TFTP_ERROR.NOT_DEFINED, reason: 'file changed while being read', path: target.path };
    return { ...target, source: new MemorySource(toNetascii(raw)) };
  } finally {
    await source.close();
  }
}
