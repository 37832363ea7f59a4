// A QEMU machine as the PXE client, under TCG (KVM fails once iPXE or OVMF runs on these hosts),
// in the LAN namespace on its own tap, with a fixed MAC and SMBIOS UUID. Its serial console is
// its stdout: success is read there, never from our own logs.
//   bios        SeaBIOS + QEMU's e1000 iPXE ROM (Debian ipxe-qemu); SeaBIOS mirrors its text
//               console to COM1 via the etc/sercon-port fw_cfg file (bytes f8 03 = 0x3f8)
//   efi-ipxe    OVMF + the virtio-net iPXE EFI ROM
//   efi-native  OVMF's own EDK2 network stack and PXE (the NIC has no option ROM)
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.ts';
import { Running, inNamespace } from './processes.ts';

export type Firmware = 'bios' | 'efi-ipxe' | 'efi-native';
export const FIRMWARES: readonly Firmware[] = ['bios', 'efi-ipxe', 'efi-native'];

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export interface GuestSpec {
  readonly name: string;
  readonly firmware: Firmware;
  readonly mac: string;
  readonly uuid: string;
  readonly namespace: string;
  readonly tap: string;
  /** Folder for the console log, the firmware's variable store, the sercon file. */
  readonly dir: string;
  /** Other OVMF images (Secure Boot: OVMF_CODE_4M.ms.fd and OVMF_VARS_4M.ms.fd). */
  readonly ovmf?: { readonly code: string; readonly vars: string };
  /** More QEMU arguments (`-fw_cfg` switches, `-machine q35,smm=on`, ...). */
  readonly extraArgs?: readonly string[];
}

/** Starts the machine (power-on); stop it with `guest.stop()` (also registered with cleanup). */
export function startGuest(spec: GuestSpec, cleanup: Cleanup): Running {
  mkdirSync(spec.dir, { recursive: true });
  const args = [
    '-accel', 'tcg', '-m', '256', '-nodefaults', '-vga', 'none', '-display', 'none', '-monitor', 'none',
    '-serial', 'stdio', '-no-reboot', '-name', spec.name, '-uuid', spec.uuid,
    '-netdev', `tap,id=n0,ifname=${spec.tap},script=no,downscript=no`,
  ];
  if (spec.firmware === 'bios') {
    const sercon = join(spec.dir, 'sercon-port');
    writeFileSync(sercon, Buffer.from([0xf8, 0x03]));
    args.push('-fw_cfg', `name=etc/sercon-port,file=${sercon}`, '-boot', 'n', '-device', `e1000,netdev=n0,mac=${spec.mac}`);
  } else {
    const code = spec.ovmf?.code ?? OVMF_CODE;
    const varsFrom = spec.ovmf?.vars ?? OVMF_VARS;
    for (const f of [code, varsFrom]) if (!existsSync(f)) throw new Error(`${f} missing: install Debian's ovmf package`);
    // A fresh variable store per power-on: a previous boot's boot order must not carry over.
    const vars = join(spec.dir, `OVMF_VARS-${Date.now()}.fd`);
    copyFileSync(varsFrom, vars);
    args.push(
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${code}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
      // OVMF ignores -boot n: the NIC gets the first boot index.
      '-device', `virtio-net-pci,netdev=n0,mac=${spec.mac},bootindex=1${spec.firmware === 'efi-native' ? ',romfile=' : ''}`,
    );
  }
  args.push(...(spec.extraArgs ?? []));
  const [command, full] = inNamespace(spec.namespace, 'qemu-system-x86_64', args);
  return new Running(`guest ${spec.name}`, command, full, join(spec.dir, `console-${Date.now()}.log`), cleanup);
}
