// Standalone sites (no management server) start from built-in empty state, so the PXE server can
// serve as soon as an administrator assigns actions. Seeds carry issued = the epoch, so any real
// snapshot or update overrides them.
import type { SbsDocument } from '../sbs/types.ts';

const EPOCH = '1970-01-01T00:00:00Z';

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
