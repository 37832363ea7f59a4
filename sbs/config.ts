// Config (spec "Config"): who gets offers, what unknown machines get, boot programs per
// architecture, and the optional menu.
import { readAction } from './action.ts';
import { SbsError } from './errors.ts';
import { Fields } from './fields.ts';
import type { JsonValue } from './json.ts';
import { readJobTemplate } from './job.ts';
import { identifier, MAX_BOOT_FILE_BYTES, relativePath, text } from './primitives.ts';
import { ARCHES, type Arch, type InitialDeployment, type InitialDeploymentItem, type Menu, type MenuItem, type PxeConfig, type RespondMode } from './types.ts';

const RESPOND: readonly RespondMode[] = ['all', 'known', 'none'];
export const MAX_RESPONSE_DELAY_MS = 10000;
/** PXE's boot menu prompt carries its timeout in one octet (PXE 2.1, option 43 sub-option 10). */
export const MAX_MENU_TIMEOUT_SEC = 255;
/** initialDeployment.timeoutSec: the spec's bound (an hour). */
export const MAX_INITIAL_TIMEOUT_SEC = 3600;

export function readConfig(value: JsonValue | undefined, path: string): PxeConfig {
  const f = Fields.of(value, path).only(['respond', 'unknown', 'responseDelayMs', 'bootFiles', 'menu', 'initialDeployment']);
  const respond = f.string('respond');
  if (!(RESPOND as readonly string[]).includes(respond)) throw new SbsError(f.at('respond'), 'must be "all", "known" or "none"');
  const unknown = f.has('unknown') ? readAction(f.raw('unknown'), f.at('unknown')) : ({ type: 'local' } as const);
  const responseDelayMs = f.integer('responseDelayMs', 0, MAX_RESPONSE_DELAY_MS, 0);
  const bootFiles = readBootFiles(f.object('bootFiles'));
  const menu = f.has('menu') ? readMenu(f.object('menu')) : undefined;
  if (unknown.type === 'menu' && menu === undefined) throw new SbsError(f.at('menu'), 'required when unknown is a menu action');
  const initialDeployment = f.has('initialDeployment') ? readInitialDeployment(f.object('initialDeployment')) : undefined;
  const config: PxeConfig = { respond: respond as RespondMode, unknown, responseDelayMs, bootFiles };
  return { ...config, ...(menu === undefined ? {} : { menu }), ...(initialDeployment === undefined ? {} : { initialDeployment }) };
}

/** Spec "Initial deployment": `{ preboot, items: [{ label, job: JobTemplate }], default?, timeoutSec }`. */
function readInitialDeployment(f: Fields): InitialDeployment {
  f.only(['preboot', 'items', 'default', 'timeoutSec']);
  const preboot = identifier(f.string('preboot'), f.at('preboot'));
  const items = f.array('items', readInitialItem);
  if (items.length === 0) throw new SbsError(f.at('items'), 'must have at least one item');
  let chosen: number | undefined;
  if (f.has('default')) {
    const v = f.raw('default');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= items.length) {
      throw new SbsError(f.at('default'), `must be an index into items (an integer from 0 to ${items.length - 1})`);
    }
    chosen = v;
  }
  const timeoutSec = f.integer('timeoutSec', 0, MAX_INITIAL_TIMEOUT_SEC);
  return { preboot, items, ...(chosen === undefined ? {} : { default: chosen }), timeoutSec };
}

function readInitialItem(value: JsonValue, path: string): InitialDeploymentItem {
  const f = Fields.of(value, path).only(['label', 'job']);
  const label = text(f.string('label'), f.at('label'), true);
  const job = readJobTemplate(f.raw('job'), f.at('job'));
  return { label, job };
}

function readBootFiles(f: Fields): Partial<Record<Arch, string>> {
  f.only(ARCHES, () => `unknown architecture (known: ${ARCHES.join(', ')})`);
  const out: Partial<Record<Arch, string>> = {};
  for (const arch of ARCHES) {
    if (f.has(arch)) out[arch] = relativePath(f.string(arch), f.at(arch), MAX_BOOT_FILE_BYTES);
  }
  return out;
}

function readMenu(f: Fields): Menu {
  f.only(['prompt', 'timeoutSec', 'items']);
  const prompt = text(f.string('prompt'), f.at('prompt'), false);
  const timeoutSec = f.integer('timeoutSec', 0, MAX_MENU_TIMEOUT_SEC);
  const items = f.array('items', readMenuItem);
  if (items.length === 0) throw new SbsError(f.at('items'), 'must have at least one item');
  return { prompt, timeoutSec, items };
}

function readMenuItem(value: JsonValue, path: string): MenuItem {
  const f = Fields.of(value, path).only(['label', 'action']);
  const label = text(f.string('label'), f.at('label'), true);
  const action = readAction(f.raw('action'), f.at('action'));
  if (action.type === 'menu') throw new SbsError(f.at('action').concat('.type'), 'a menu item cannot open the menu');
  return { label, action };
}
