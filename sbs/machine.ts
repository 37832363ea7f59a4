// Client `{ mac, uuid?, name?, action }` and Predefined `{ mac, uuid?, name }` (spec "Types").
import { readAction } from './action.ts';
import { Fields } from './fields.ts';
import type { JsonValue } from './json.ts';
import { guid, mac, text } from './primitives.ts';
import type { Client, Predefined } from './types.ts';

export function readClient(value: JsonValue | undefined, path: string): Client {
  const f = Fields.of(value, path).only(['mac', 'uuid', 'name', 'action']);
  const client: { mac: string; uuid?: string; name?: string; action?: Client['action'] } = { mac: mac(f.string('mac'), f.at('mac')) };
  if (f.has('uuid')) client.uuid = guid(f.string('uuid'), f.at('uuid'));
  if (f.has('name')) client.name = text(f.string('name'), f.at('name'), true);
  client.action = readAction(f.raw('action'), f.at('action'));
  return client as Client;
}

export function readPredefined(value: JsonValue | undefined, path: string): Predefined {
  const f = Fields.of(value, path).only(['mac', 'uuid', 'name']);
  const computer: { mac: string; uuid?: string; name?: string } = { mac: mac(f.string('mac'), f.at('mac')) };
  if (f.has('uuid')) computer.uuid = guid(f.string('uuid'), f.at('uuid'));
  computer.name = text(f.string('name'), f.at('name'), true);
  return computer as Predefined;
}
