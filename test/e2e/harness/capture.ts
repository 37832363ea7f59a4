// Optional packet captures of the guests' DHCP/PXE traffic on the bridge (tcpdump), saved as codec
// fixtures for the server's tests: set NETBOOT_E2E_CAPTURE_DIR to a folder to keep them.
import { join } from 'node:path';
import type { Cleanup } from './cleanup.ts';
import type { Lan } from './network.ts';
import { Running, inNamespace, sleep } from './processes.ts';

export const CAPTURE_DIR = process.env.NETBOOT_E2E_CAPTURE_DIR;

export interface Capture {
  /** Stops tcpdump after a moment, so the last packets are written too. */
  finish(): Promise<void>;
}

export async function startCapture(lan: Lan, name: string, logDir: string, cleanup: Cleanup): Promise<Capture | null> {
  if (CAPTURE_DIR === undefined) return null;
  const file = join(CAPTURE_DIR, `${name}.pcap`);
  const [command, args] = inNamespace(lan.lan, 'tcpdump', ['-i', 'br0', '--immediate-mode', '-U', '-w', file, 'udp port 67 or udp port 68 or udp port 4011']);
  const p = new Running(`tcpdump ${name}`, command, args, join(logDir, `tcpdump-${name}.log`), cleanup);
  await p.waitFor(/listening on br0/, 10000);
  return {
    finish: async () => {
      await sleep(500); // not an ordering: lets tcpdump write the last packets of a finished run
      await p.stop();
    },
  };
}
