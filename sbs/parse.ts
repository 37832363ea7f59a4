// parseSbs: bytes of an SBS v1 file in, a validated, normalised SbsDocument out
// (../shared/spec/sbs-v1.md; choices where the spec is silent: sbs/README.md). Pure: no files,
// sockets or clock. Throws only SbsError, whatever the input.
import { readConfig } from './config.ts';
import { ENVELOPE_FIELDS, readEnvelope, readReplicateTo } from './envelope.ts';
import { DOCUMENT, SbsError } from './errors.ts';
import { Fields, refuseDuplicates } from './fields.ts';
import { readImage } from './image.ts';
import { readJob, readJobId } from './job.ts';
import { decodeUtf8, parseJson, type JsonValue } from './json.ts';
import { readClient, readPredefined } from './machine.ts';
import { identifier, mac } from './primitives.ts';
import type { SbsDocument, SbsKind } from './types.ts';

/** The payload member(s) each kind carries. */
export const PAYLOAD_FIELDS: Readonly<Record<SbsKind, readonly string[]>> = {
  config: ['config'],
  clients: ['clients'],
  images: ['images'],
  'predefined-computers': ['computers'],
  client: ['client'],
  'client-remove': ['mac'],
  image: ['image'],
  'image-remove': ['imageId', 'image'],
  'predefined-computer': ['computer'],
  'predefined-computer-remove': ['mac'],
  job: ['job'],
  'job-cancel': ['jobId'],
};

const OTHER_PAYLOADS = new Set(Object.values(PAYLOAD_FIELDS).flat());

export function parseSbs(input: Buffer | string): SbsDocument {
  try {
    return parseText(decodeUtf8(input));
  } catch (err) {
    if (err instanceof SbsError) throw err;
    // Nothing else is expected; if something slips through, it still leaves as an SbsError.
    throw new SbsError(DOCUMENT, `cannot be read (${err instanceof Error ? err.message : String(err)})`);
  }
}

function parseText(text: string): SbsDocument {
  const root = parseJson(text);
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new SbsError(DOCUMENT, 'must be a JSON object');
  const f = new Fields(root, '');
  const env = readEnvelope(f);
  const payload = PAYLOAD_FIELDS[env.kind];
  f.only([...ENVELOPE_FIELDS, ...payload, 'replicateTo'], (k) => (OTHER_PAYLOADS.has(k) ? `not allowed for kind ${env.kind}` : undefined));
  const replicateTo = readReplicateTo(f, env.kind);
  const body = readPayload(f, env.kind);
  const doc = { ...env, ...(replicateTo === undefined ? {} : { replicateTo }), ...body };
  return doc as SbsDocument;
}

function readPayload(f: Fields, kind: SbsKind): Record<string, unknown> {
  switch (kind) {
    case 'config':
      return { config: readConfig(f.raw('config'), 'config') };
    case 'clients': {
      const clients = f.array('clients', readClient);
      refuseDuplicates(clients, 'clients', (c) => c.mac, 'mac');
      return { clients };
    }
    case 'images': {
      const images = f.array('images', readImage);
      refuseDuplicates(images, 'images', (i) => i.id, 'id');
      return { images };
    }
    case 'predefined-computers': {
      const computers = f.array('computers', readPredefined);
      refuseDuplicates(computers, 'computers', (c) => c.mac, 'mac');
      return { computers };
    }
    case 'client':
      return { client: readClient(f.raw('client'), 'client') };
    case 'image':
      return { image: readImage(f.raw('image'), 'image') };
    case 'predefined-computer':
      return { computer: readPredefined(f.raw('computer'), 'computer') };
    case 'client-remove':
    case 'predefined-computer-remove':
      return { mac: mac(f.string('mac'), 'mac') };
    case 'image-remove':
      return { imageId: readRemovedImageId(f) };
    case 'job':
      return { job: readJob(f.raw('job'), 'job') };
    case 'job-cancel':
      return { jobId: readJobId(f) };
  }
}

// The spec names this payload `id`, which the envelope already uses for the instruction's GUID.
// Accepted: `imageId`, or `image` as a string (mirroring the `image` kind's member name).
function readRemovedImageId(f: Fields): string {
  if (f.has('imageId') && f.has('image')) throw new SbsError('image', 'not allowed together with imageId');
  const key = f.has('image') ? 'image' : 'imageId';
  const v: JsonValue | undefined = f.raw(key);
  if (key === 'image' && typeof v !== 'string') throw new SbsError('image', 'must be an image id string');
  return identifier(f.string(key), key);
}

export { SbsError } from './errors.ts';
