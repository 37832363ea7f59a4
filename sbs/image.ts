// Image (spec "Image"): a preboot configuration. Each type has its own fields; a field of another
// type is refused rather than ignored, so a mistyped `type` cannot silently drop a kernel or wim.
import { SbsError } from './errors.ts';
import { Fields } from './fields.ts';
import type { JsonValue } from './json.ts';
import { identifier, relativePath, text } from './primitives.ts';
import { ARCHES, type Arch, type Image, type ImageType } from './types.ts';

const COMMON = ['id', 'name', 'arch', 'type', 'package'];
const BY_TYPE: Record<ImageType, readonly string[]> = {
  linux: ['kernel', 'initrd', 'cmdline'],
  winpe: ['wim', 'bcd', 'sdi'],
  nbp: ['bootFile'],
};
const REQUIRED: Record<ImageType, string> = { linux: 'kernel', winpe: 'wim', nbp: 'bootFile' };
const TYPE_FIELDS = Object.values(BY_TYPE).flat();

export function readImage(value: JsonValue | undefined, path: string): Image {
  const f = Fields.of(value, path);
  // The type decides which members are allowed, so read it first (after a look for strangers).
  f.only([...COMMON, ...TYPE_FIELDS]);
  const type = f.string('type');
  if (!Object.hasOwn(BY_TYPE, type)) throw new SbsError(f.at('type'), 'must be "linux", "winpe" or "nbp"');
  const own = BY_TYPE[type as ImageType];
  f.only([...COMMON, ...own], () => `not allowed for type ${type}`);

  const id = identifier(f.string('id'), f.at('id'));
  const name = text(f.string('name'), f.at('name'), true);
  const arch = readArch(f);
  const required = REQUIRED[type as ImageType];
  if (!f.has(required)) throw new SbsError(f.at(required), `required for type ${type}`);

  const image: Record<string, unknown> = { id, name, arch, type };
  for (const key of own) {
    if (!f.has(key)) continue;
    if (key === 'initrd') image[key] = f.array(key, (v, p) => relativePath(asString(v, p), p));
    else if (key === 'cmdline') image[key] = text(f.string(key), f.at(key), false);
    else image[key] = relativePath(f.string(key), f.at(key));
  }
  if (f.has('package')) image.package = identifier(f.string('package'), f.at('package'));
  return image as unknown as Image;
}

function readArch(f: Fields): Arch[] {
  const arch = f.array('arch', (v, p) => {
    const s = asString(v, p);
    if (!(ARCHES as readonly string[]).includes(s)) throw new SbsError(p, `unknown architecture (known: ${ARCHES.join(', ')})`);
    return s as Arch;
  });
  if (arch.length === 0) throw new SbsError(f.at('arch'), 'must name at least one architecture');
  arch.forEach((a, i) => {
    const first = arch.indexOf(a);
    if (first !== i) throw new SbsError(`${f.at('arch')}[${i}]`, `duplicate of ${f.at('arch')}[${first}]`);
  });
  return arch;
}

function asString(v: JsonValue, path: string): string {
  if (typeof v !== 'string') throw new SbsError(path, 'must be a string');
  return v;
}
