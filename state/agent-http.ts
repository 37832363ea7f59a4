// What the agent's routes on TCP 490 share (/agent/job in jobs-agent-routes.ts, /agent/enrol in
// enrolment-routes.ts): the bearer secret, a bounded JSON body, JSON answers, and one error path.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage } from '../platform/runtime/errors.ts';
import type { Logger } from '../platform/runtime/logger.ts';

/** A request the agent got wrong: answered 400 with its message. */
export class BadRequest extends Error {}

const SECRET = /^[0-9a-f]{64}$/;

/** The 64-hex secret of `Authorization: Bearer ...`, lowercased, or null. */
export function bearerSecret(req: IncomingMessage): string | null {
  const secret = /^Bearer ([0-9A-Fa-f]+)$/.exec(req.headers.authorization ?? '')?.[1]?.toLowerCase();
  return secret !== undefined && SECRET.test(secret) ? secret : null;
}

/** Runs a route; a BadRequest is a 400, anything else is logged and a 500. */
export function guarded(route: (req: IncomingMessage, res: ServerResponse) => Promise<void>, log: Logger, what: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void route(req, res).catch((err) => {
      if (err instanceof BadRequest) {
        send(res, 400, { error: err.message });
        return;
      }
      log.error(`${what} failed`, { url: req.url, err: errorMessage(err) });
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
}

/** The body as a JSON object ({} when empty), at most `maxBytes`. */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new BadRequest(`body larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  if (raw.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new BadRequest('body: not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadRequest('body: must be a JSON object');
  return v as Record<string, unknown>;
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) }).end(text);
}
