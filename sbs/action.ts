// Action: what a machine gets (spec "Action, by type"). `boot.once` defaults to true.
import { SbsError } from './errors.ts';
import { Fields } from './fields.ts';
import type { JsonValue } from './json.ts';
import { identifier } from './primitives.ts';
import type { Action } from './types.ts';

const TYPES = ['local', 'boot', 'menu', 'wait'] as const;
const BOOT_FIELDS = ['image', 'once'];

export function readAction(value: JsonValue | undefined, path: string): Action {
  const f = Fields.of(value, path);
  const type = f.string('type');
  if (!(TYPES as readonly string[]).includes(type)) {
    throw new SbsError(f.at('type'), `must be "local", "boot", "menu" or "wait"`);
  }
  if (type !== 'boot') {
    f.only(['type'], (k) => (BOOT_FIELDS.includes(k) ? `not allowed for type ${type}` : undefined));
    return { type: type as 'local' | 'menu' | 'wait' };
  }
  f.only(['type', ...BOOT_FIELDS]);
  return { type: 'boot', image: identifier(f.string('image'), f.at('image')), once: f.boolean('once', true) };
}
