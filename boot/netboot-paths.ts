// The virtual TFTP paths the server hands out: every one starts with the machine's MAC, so each
// fetch says which machine it is (for `once` and for the logs). Pure.
//   netboot/<mac>/boot.ipxe                    the machine's iPXE script for its current action
//   netboot/<mac>/menu/<n>.ipxe                the script of menu item n
//   netboot/<mac>/image/<imageId>/<relative>   a file of an image
//   netboot/<mac>/wimboot                      wimboot (from the TFTP root), for winpe images
//   netboot/<mac>/grub.cfg                     the GRUB configuration (Secure Boot chain)
// <mac> is lower case with `-` separators (`:` is awkward in URLs and file names); `:` is
// accepted too, as GRUB's `$net_default_mac` writes it.

export const NETBOOT_PREFIX = 'netboot/';

export type NetbootPath =
  | { readonly kind: 'script'; readonly mac: string }
  | { readonly kind: 'menu-item'; readonly mac: string; readonly index: number }
  | { readonly kind: 'image'; readonly mac: string; readonly imageId: string; readonly relative: string }
  | { readonly kind: 'wimboot'; readonly mac: string }
  | { readonly kind: 'grub'; readonly mac: string };

function macDir(mac: string): string {
  return `${NETBOOT_PREFIX}${mac.replace(/:/g, '-')}`;
}

export function scriptPath(mac: string): string {
  return `${macDir(mac)}/boot.ipxe`;
}
export function menuItemPath(mac: string, index: number): string {
  return `${macDir(mac)}/menu/${index}.ipxe`;
}
export function imagePath(mac: string, imageId: string, relative: string): string {
  return `${macDir(mac)}/image/${imageId}/${relative}`;
}
export function wimbootPath(mac: string): string {
  return `${macDir(mac)}/wimboot`;
}

/** A relative path that stays where it is put: no `..`, `.`, empty parts, `\` or NUL. */
export function isSafeRelative(path: string): boolean {
  if (path === '' || path.startsWith('/') || /[\\\0]/.test(path)) return false;
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** Parses a requested path (a leading `/` is ignored, as clients differ); a string says why not. */
export function parseNetbootPath(requested: string): NetbootPath | string {
  const path = requested.replace(/^\/+/, '');
  if (!path.startsWith(NETBOOT_PREFIX)) return 'not under netboot/';
  const parts = path.slice(NETBOOT_PREFIX.length).split('/');
  const macPart = parts[0] ?? '';
  if (!/^[0-9a-fA-F]{2}([-:])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/.test(macPart)) return `not a MAC: ${JSON.stringify(macPart)}`;
  const mac = macPart.toLowerCase().replace(/-/g, ':');
  const rest = parts.slice(1);
  if (rest.length === 1 && rest[0] === 'grub.cfg') return { kind: 'grub', mac };
  if (rest.length === 1 && rest[0] === 'boot.ipxe') return { kind: 'script', mac };
  if (rest.length === 1 && rest[0] === 'wimboot') return { kind: 'wimboot', mac };
  if (rest.length === 2 && rest[0] === 'menu') {
    const m = /^(\d{1,4})\.ipxe$/.exec(rest[1]!);
    if (m !== null) return { kind: 'menu-item', mac, index: Number(m[1]) };
  }
  if (rest.length >= 3 && rest[0] === 'image') {
    const imageId = rest[1]!;
    const relative = rest.slice(2).join('/');
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(imageId) || imageId === '.' || imageId === '..') return `not an image id: ${JSON.stringify(imageId)}`;
    if (!isSafeRelative(relative)) return `unsafe path: ${JSON.stringify(relative)}`;
    return { kind: 'image', mac, imageId, relative };
  }
  return `no such netboot path: ${JSON.stringify(path)}`;
}
