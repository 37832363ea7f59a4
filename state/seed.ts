// Standalone sites (no management server) start from built-in empty state, so the PXE server can
// serve as soon as an administrator assigns actions. Seeds carry issued = the epoch, so any real
// snapshot or update overrides them.
import type { SbsDocument } from '../sbs/types.ts';

const EPOCH = '1970-01-01T00:00:00Z';

/**
 * The seed with `menu` (`[bootwiz] seed_menu`, the quick start's config): unknown machines get a
 * menu, local disk first (the default once `timeoutSec` passes), then the preboot image BootWiz
 * builds. Applies to a site's first state only, like every seed.
 */
export function seedDocuments(menu: { readonly image: string; readonly timeoutSec: number } | null): readonly SbsDocument[] {
  if (menu === null) return SEED_DOCUMENTS;
  const [config, ...rest] = SEED_DOCUMENTS as [Extract<SbsDocument, { kind: 'config' }>, ...SbsDocument[]];
  return [{
    ...config,
    config: {
      ...config.config,
      unknown: { type: 'menu' },
      menu: { prompt: 'netboot', timeoutSec: menu.timeoutSec, items: [
        { label: 'Local disk', action: { type: 'local' } },
        { label: 'LinuxPE (netboot preboot environment)', action: { type: 'boot', image: menu.image, once: false } },
      ] },
    },
  }, ...rest];
}

export const SEED_DOCUMENTS: readonly SbsDocument[] = [
  {
    sbs: 1, id: '00000000-0000-4000-8000-000000000001', kind: 'config', issued: EPOCH,
    // Nobody is offered anything until a client is assigned an action: safe on any network.
    config: { respond: 'all', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe', 'efi-x64': 'ipxe.efi', 'efi-ia32': 'ipxe-ia32.efi', 'efi-arm64': 'ipxe-arm64.efi' } },
  },
  { sbs: 1, id: '00000000-0000-4000-8000-000000000002', kind: 'clients', issued: EPOCH, clients: [] },
  { sbs: 1, id: '00000000-0000-4000-8000-000000000003', kind: 'images', issued: EPOCH, images: [] },
  { sbs: 1, id: '00000000-0000-4000-8000-000000000004', kind: 'predefined-computers', issued: EPOCH, computers: [] },
];
