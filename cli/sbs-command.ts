// `netboot sbs validate FILE...` and `netboot sbs send KIND ...`: check instruction files, and
// write valid instructions into the configured SBS folder (atomically, never an invalid one).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDocument, sbsFileName, type EnvelopeOptions } from '../sbs/build.ts';
import { SbsError } from '../sbs/errors.ts';
import { decodeUtf8, parseJson, type JsonValue } from '../sbs/json.ts';
import { parseSbs } from '../sbs/parse.ts';
import { serializeSbs } from '../sbs/serialize.ts';
import { KINDS, type SbsDocument, type SbsKind } from '../sbs/types.ts';
import { writeFileAtomic } from '../platform/runtime/atomic-file.ts';
import { errorMessage } from '../platform/runtime/errors.ts';
import { stringFlag, type CommandSpec, type OptionSpec, type ParsedArgs } from './args.ts';
import { configFor, type CliContext, type Command } from './context.ts';
import { checkInstruction } from './sbs-checks.ts';

const USAGE = `usage:
  netboot sbs validate FILE...
  netboot sbs send client --mac MAC (--boot IMAGE [--once|--no-once] | --local | --menu | --wait)
                   [--name NAME] [--uuid UUID] [--replicate-to HOST[:PORT],...]
  netboot sbs send client-remove --mac MAC [--replicate-to HOST[:PORT],...]
  netboot sbs send image (--file IMAGE.json | --id ID --name NAME --arch ARCH,... --type TYPE
                   [--kernel P] [--initrd P,...] [--cmdline=TEXT] [--wim P] [--bcd P] [--sdi P]
                   [--boot-file P] [--package PKG])
  netboot sbs send image-remove --id ID
  netboot sbs send predefined-computer --mac MAC --name NAME [--uuid UUID]
  netboot sbs send predefined-computer-remove --mac MAC
  netboot sbs send config|clients|images|predefined-computers|client|predefined-computer --file PAYLOAD.json
  netboot sbs send --file DOCUMENT.sbs
Every send takes --issued RFC3339 (default: now) and --instruction-id GUID (default: random),
except --file DOCUMENT, which is sent as written (normalised). A send warns when the instruction
names an image, package or peer the site does not have; with --strict it then writes nothing (exit 1).`;

const value = (v: string, help: string): OptionSpec => ({ type: 'string', value: v, help });
const flag = (help: string): OptionSpec => ({ type: 'boolean', help });

export const sbsSpec: CommandSpec = {
  name: 'sbs',
  summary: 'SBS instruction files: check them, or write one into the SBS folder',
  subcommands: {
    validate: { name: 'sbs validate', summary: 'check SBS instruction files; one line per file', args: 'FILE...', arity: [1, Infinity], description: ['Exit status 1 when any file is invalid or unreadable.'] },
    send: {
      name: 'sbs send',
      summary: 'write one instruction into the SBS folder',
      args: 'KIND ...',
      arity: [0, 1],
      synopsis: [
        'sbs send client --mac MAC (--boot IMAGE [--once|--no-once] | --local',
        '                 | --menu | --wait) [--name NAME] [--uuid UUID]',
        '                 [--replicate-to HOST[:PORT],...]',
        'sbs send client-remove --mac MAC [--replicate-to HOST[:PORT],...]',
        'sbs send image (--file IMAGE.json | --id ID --name NAME',
        '                 --arch ARCH,... --type TYPE [--kernel P] [--initrd P,...]',
        '                 [--cmdline=TEXT] [--wim P] [--bcd P] [--sdi P]',
        '                 [--boot-file P] [--package PKG])',
        'sbs send image-remove --id ID',
        'sbs send predefined-computer --mac MAC --name NAME [--uuid UUID]',
        'sbs send predefined-computer-remove --mac MAC',
        'sbs send KIND --file PAYLOAD.json  (KIND: config, clients, images,',
        '                 predefined-computers, client, predefined-computer)',
        'sbs send --file DOCUMENT.sbs',
      ],
      description: [
        'KIND is client, client-remove, image, image-remove, predefined-computer, predefined-computer-remove, config, clients, images or predefined-computers. The instruction is checked first: an invalid one is never written (exit status 1).',
        'Every send takes --issued RFC3339 (default: now) and --instruction-id GUID (default: random), except --file DOCUMENT, which is sent as written (normalised).',
      ],
      options: {
        mac: value('MAC', 'the machine\'s MAC address'),
        boot: value('IMAGE', 'client: boot this image'),
        once: flag('client: boot the image once, then local (the default with --boot)'),
        'no-once': flag('client: boot the image every time'),
        local: flag('client: boot from the local disk'),
        menu: flag('client: show the boot menu'),
        wait: flag('client: wait for an instruction'),
        name: value('NAME', 'the computer\'s or image\'s name'),
        uuid: value('UUID', 'the computer\'s SMBIOS UUID'),
        'replicate-to': value('HOST[:PORT],...', 'also deliver it to these peer sites'),
        file: value('FILE', 'the payload (JSON) or, without KIND, a whole SBS document'),
        id: value('ID', 'image: its id; image-remove: the image to remove'),
        arch: value('ARCH,...', 'image: bios, efi-ia32, efi-x64, efi-arm64'),
        type: value('TYPE', 'image: linux, winpe or nbp'),
        kernel: value('PATH', 'image (linux): the kernel'),
        initrd: value('PATH,...', 'image (linux): the initrds'),
        cmdline: value('TEXT', 'image (linux): the kernel command line (write --cmdline=TEXT)'),
        wim: value('PATH', 'image (winpe): boot.wim'),
        bcd: value('PATH', 'image (winpe): the BCD store'),
        sdi: value('PATH', 'image (winpe): boot.sdi'),
        'boot-file': value('PATH', 'image (nbp): the boot program'),
        package: value('PKG', 'image: the package its files come from'),
        issued: value('RFC3339', 'the instruction\'s issued time (default: now)'),
        'instruction-id': value('GUID', 'the instruction\'s id (default: random)'),
        strict: flag('refuse (exit 1, nothing written) when it names an image, package or peer this site does not have'),
      },
    },
  },
};

class UsageError extends Error {}

export const sbsCommand: Command = async (ctx) => {
  const [sub, ...rest] = ctx.args.positionals;
  try {
    if (sub === 'validate') return validate(ctx, rest);
    if (sub === 'send') return await send(ctx, rest);
    throw new UsageError(sub === undefined ? 'missing subcommand' : `unknown subcommand: ${sub}`);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    ctx.err(`netboot sbs: ${err.message}\n${USAGE}`);
    return 2;
  }
};

function validate(ctx: CliContext, files: readonly string[]): number {
  allowFlags(ctx.args, []);
  if (files.length === 0) throw new UsageError('validate needs at least one FILE');
  let invalid = 0;
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      invalid++;
      ctx.out(`${file}: unreadable: ${errorMessage(err)}`);
      continue;
    }
    try {
      const doc = parseSbs(bytes);
      ctx.out(`${file}: valid (${doc.kind}, ${doc.id})`);
    } catch (err) {
      invalid++;
      ctx.out(`${file}: invalid: ${errorMessage(err)}`);
    }
  }
  return invalid === 0 ? 0 : 1;
}

const ENVELOPE_FLAGS = ['issued', 'instruction-id', 'strict'];
const FLAGS: Record<string, readonly string[]> = {
  client: ['mac', 'boot', 'once', 'no-once', 'local', 'menu', 'wait', 'name', 'uuid', 'replicate-to', 'file'],
  'client-remove': ['mac', 'replicate-to'],
  image: ['file', 'id', 'name', 'arch', 'type', 'kernel', 'initrd', 'cmdline', 'wim', 'bcd', 'sdi', 'boot-file', 'package'],
  'image-remove': ['id'],
  'predefined-computer': ['mac', 'name', 'uuid', 'file'],
  'predefined-computer-remove': ['mac'],
  config: ['file'],
  clients: ['file'],
  images: ['file'],
  'predefined-computers': ['file'],
};
const SWITCHES = ['once', 'no-once', 'local', 'menu', 'wait', 'strict'];
const PAYLOAD_KEY: Partial<Record<SbsKind, string>> = {
  config: 'config', clients: 'clients', images: 'images', 'predefined-computers': 'computers',
  client: 'client', image: 'image', 'predefined-computer': 'computer',
};

async function send(ctx: CliContext, rest: readonly string[]): Promise<number> {
  const [kindArg, ...extra] = rest;
  if (extra.length > 0) throw new UsageError(`unexpected argument: ${extra[0]}`);
  let doc: SbsDocument;
  try {
    doc = kindArg === undefined ? fullDocument(ctx.args) : buildFromFlags(ctx.args, kindArg);
  } catch (err) {
    if (!(err instanceof SbsError)) throw err;
    ctx.err(`netboot sbs send: invalid instruction, nothing written: ${err.message}`);
    return 1;
  }
  return writeInstruction(ctx, doc, 'netboot sbs send');
}

/**
 * The checked write every instruction the CLI makes goes through (`netboot sbs send`, `netboot
 * job`): warnings for names the site lacks (refused with --strict), then an atomic write into the
 * SBS folder under its conventional name. `doc` is already validated (parseSbs/buildDocument).
 */
export async function writeInstruction(ctx: CliContext, doc: SbsDocument, who: string): Promise<number> {
  const config = configFor(ctx);
  const check = await checkInstruction(doc, config);
  for (const w of [...check.problems, ...check.unchecked]) ctx.err(`${who}: warning: ${w}`);
  if (check.problems.length > 0 && ctx.args.flags.has('strict')) {
    ctx.err(`${who}: refused (--strict), nothing written`);
    return 1;
  }
  const folder = config.paths.sbs;
  mkdirSync(folder, { recursive: true });
  const path = join(folder, sbsFileName(doc));
  if (existsSync(path)) {
    ctx.err(`${who}: ${path} already exists, nothing written`);
    return 1;
  }
  writeFileAtomic(path, serializeSbs(doc));
  ctx.out(`${path}: written (${doc.kind}, ${doc.id})`);
  return 0;
}

function fullDocument(args: ParsedArgs): SbsDocument {
  allowFlags(args, ['file', 'strict']);
  const file = stringFlag(args, 'file');
  if (file === undefined) throw new UsageError('send needs a KIND, or --file DOCUMENT');
  return parseSbs(readFileSync(file));
}

function buildFromFlags(args: ParsedArgs, kindArg: string): SbsDocument {
  if (!(KINDS as readonly string[]).includes(kindArg)) throw new UsageError(`unknown kind: ${kindArg} (known: ${KINDS.join(', ')})`);
  const kind = kindArg as SbsKind;
  allowFlags(args, [...FLAGS[kind]!, ...ENVELOPE_FLAGS]);
  for (const s of SWITCHES) if (typeof args.flags.get(s) === 'string') throw new UsageError(`--${s} takes no value`);
  const opts: EnvelopeOptions = {
    ...optional('id', stringFlag(args, 'instruction-id')),
    ...optional('issued', stringFlag(args, 'issued')),
    ...optional('replicateTo', list(args, 'replicate-to')),
  };
  const file = stringFlag(args, 'file');
  const payloadKey = PAYLOAD_KEY[kind];
  if (file !== undefined && payloadKey !== undefined) {
    const others = [...args.flags.keys()].filter((k) => !['file', 'config', 'replicate-to', ...ENVELOPE_FLAGS].includes(k));
    if (others.length > 0) throw new UsageError(`--file gives the whole payload; --${others[0]} is not allowed with it`);
    return buildDocument(kind, { [payloadKey]: readPayload(file) }, opts);
  }
  return buildDocument(kind, payloadFromFlags(args, kind), opts);
}

function payloadFromFlags(args: ParsedArgs, kind: SbsKind): Record<string, unknown> {
  const need = (name: string): string => {
    const v = stringFlag(args, name);
    if (v === undefined) throw new UsageError(`send ${kind} needs --${name} VALUE`);
    return v;
  };
  const opt = (name: string, key = name): Partial<Record<string, string>> => optional(key, stringFlag(args, name));
  switch (kind) {
    case 'client':
      return { client: { mac: need('mac'), ...opt('uuid'), ...opt('name'), action: actionFromFlags(args) } };
    case 'client-remove':
    case 'predefined-computer-remove':
      return { mac: need('mac') };
    case 'image-remove':
      return { imageId: need('id') };
    case 'predefined-computer':
      return { computer: { mac: need('mac'), ...opt('uuid'), name: need('name') } };
    case 'image':
      return {
        image: {
          id: need('id'), name: need('name'), arch: list(args, 'arch') ?? need('arch'), type: need('type'),
          ...opt('kernel'), ...optional('initrd', list(args, 'initrd')), ...opt('cmdline'), ...opt('wim'), ...opt('bcd'),
          ...opt('sdi'), ...opt('boot-file', 'bootFile'), ...opt('package'),
        },
      };
    default:
      throw new UsageError(`send ${kind} needs --file PAYLOAD.json`);
  }
}

function actionFromFlags(args: ParsedArgs): Record<string, unknown> {
  const chosen = ['boot', 'local', 'menu', 'wait'].filter((a) => args.flags.has(a));
  if (chosen.length !== 1) throw new UsageError('send client needs exactly one of --boot IMAGE, --local, --menu, --wait');
  const once = args.flags.has('once');
  const noOnce = args.flags.has('no-once');
  if ((once || noOnce) && chosen[0] !== 'boot') throw new UsageError('--once and --no-once go with --boot');
  if (once && noOnce) throw new UsageError('give --once or --no-once, not both');
  if (chosen[0] !== 'boot') return { type: chosen[0] };
  const image = stringFlag(args, 'boot');
  if (image === undefined) throw new UsageError('--boot needs an IMAGE id');
  return { type: 'boot', image, once: !noOnce };
}

function allowFlags(args: ParsedArgs, allowed: readonly string[]): void {
  for (const name of args.flags.keys()) {
    if (name !== 'config' && !allowed.includes(name)) throw new UsageError(`unknown option --${name}`);
  }
  for (const name of allowed) {
    if (!SWITCHES.includes(name) && args.flags.get(name) === true) throw new UsageError(`--${name} needs a value`);
  }
}

function list(args: ParsedArgs, name: string): string[] | undefined {
  return stringFlag(args, name)?.split(',').map((s) => s.trim());
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

function readPayload(file: string): JsonValue {
  const bytes = readFileSync(file);
  try {
    return parseJson(decodeUtf8(bytes));
  } catch (err) {
    if (err instanceof SbsError) throw new SbsError(`${file} ${err.field}`, err.problem);
    throw err;
  }
}
