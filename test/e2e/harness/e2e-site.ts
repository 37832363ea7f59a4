// Everything one end-to-end test file needs, built in order and torn down whatever happens: the
// namespaces, the site's ordinary DHCP server, the management-server stand-in, netboot itself
// (supervised) with a TFTP root holding the iPXE builds and the second stage, and guests on
// demand. `settle()` returns once the start-up state from the stand-in is in force.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup } from './cleanup.ts';
import { startDhcpServer } from './dnsmasq.ts';
import { startGuest, type Firmware, type GuestSpec } from './guest.ts';
import { ManagementStandIn } from './management-stand-in.ts';
import { NetbootSite, poll } from './netboot-site.ts';
import { Lan } from './network.ts';
import type { Running } from './processes.ts';
import { RelayNet, type RelayOptions, type SubnetName } from './relay-network.ts';
import { makeTftpRoot, markerPattern, NOTHING_TO_BOOT, type TftpRoot } from './second-stage.ts';

/** Where the stand-in listens, on the server namespace's loopback. */
export const MANAGEMENT_PORT = 8080;

export interface E2eOptions {
  /** Client subnets behind a router running dhcrelay (`harness/relay-network.ts`). */
  readonly relay?: RelayOptions;
  /** netboot's [server] section (see NetbootSite). */
  readonly serverToml?: string;
  /** More dnsmasq arguments for the site's ordinary DHCP server (e.g. `--dhcp-boot=,,SERVER`). */
  readonly dhcpArgs?: readonly string[];
  /** netboot's [interface] bind (see NetbootSite). */
  readonly interfaceBind?: string;
}

export class E2eSite {
  private guests = 0;

  private constructor(
    readonly cleanup: Cleanup,
    readonly dir: string,
    readonly lan: Lan,
    readonly standIn: ManagementStandIn,
    readonly site: NetbootSite,
    readonly tftp: TftpRoot,
    readonly relayNet: RelayNet | null = null,
  ) {}

  /** Builds the site and starts netboot; `answer` is the stand-in's first start-up state. */
  static async start(name: string, answer: unknown, options: E2eOptions = {}): Promise<E2eSite> {
    const cleanup = new Cleanup();
    try {
      const dir = mkdtempSync(join(tmpdir(), `netboot-e2e-${name}-`));
      // Kept when NETBOOT_E2E_KEEP is set: consoles and logs for a post-mortem.
      const remove = (): void => {
        if (process.env.NETBOOT_E2E_KEEP === undefined) rmSync(dir, { recursive: true, force: true });
      };
      cleanup.add(`remove ${dir}`, remove, remove);
      const lan = await Lan.create(cleanup);
      const relayNet = options.relay === undefined ? null : await RelayNet.create(lan, cleanup);
      await startDhcpServer(lan, dir, cleanup, [...(relayNet?.dhcpArgs() ?? []), ...(options.dhcpArgs ?? [])]);
      if (relayNet !== null) await relayNet.start(dir, cleanup, options.relay);
      const standIn = await ManagementStandIn.start(lan.srv, MANAGEMENT_PORT, dir, answer, cleanup);
      const site = new NetbootSite(lan, join(dir, 'site'), cleanup, { managementUrl: standIn.url, ...(options.serverToml === undefined ? {} : { serverToml: options.serverToml }), ...(options.interfaceBind === undefined ? {} : { interfaceBind: options.interfaceBind }) });
      const tftp = makeTftpRoot(site.tftpRoot);
      site.start();
      const s = new E2eSite(cleanup, dir, lan, standIn, site, tftp, relayNet);
      await s.settle(0);
      return s;
    } catch (err) {
      await cleanup.run();
      throw err;
    }
  }

  /**
   * Waits until all four services serve and Signal's start-up runs since `startupsBefore` GETs
   * (one for Signal's own start and one for the server's, or one for a server restart) have been
   * written and applied: an instruction dropped before that would be older than the snapshot.
   */
  async settle(startupsBefore: number, timeoutMs = 45000): Promise<void> {
    const needed = startupsBefore === 0 ? 2 : startupsBefore + 1;
    await this.site.waitServing(timeoutMs);
    await poll('the start-up state to be written and applied', timeoutMs, async () => {
      if (this.standIn.count('GET', '/pxe/startup') < needed) return undefined;
      const written = this.site.supervisor.output.split('\n').filter((l) => l.includes('"start-up state written"')).length;
      if (written < needed) return undefined;
      return this.site.pendingSbs().length === 0 ? true : undefined;
    });
  }

  /** Powers on a new machine on its own tap: on the server's LAN, or on a client subnet behind the relay. */
  async powerOn(name: string, firmware: Firmware, mac: string, behindRelay?: SubnetName, machine: Pick<GuestSpec, 'ovmf' | 'extraArgs'> = {}): Promise<Running> {
    if (behindRelay !== undefined && this.relayNet === null) throw new Error('this site has no relay: start it with { relay: {} }');
    const tap = behindRelay === undefined ? await this.lan.addTap() : await this.relayNet!.addTap(behindRelay);
    const namespace = behindRelay === undefined ? this.lan.lan : this.relayNet!.cli;
    const n = ++this.guests;
    const uuid = `8a3c1e52-7f0d-4b6a-9e21-${mac.replace(/:/g, '')}`;
    return startGuest({ name: `${name}-${n}`, firmware, mac, uuid, namespace, tap, dir: join(this.dir, 'guests', `${n}-${name}`), ...machine }, this.cleanup);
  }

  /**
   * Waits for this machine's second-stage marker on its console; returns the marker line. Fails
   * at once if iPXE says it has nothing to boot instead.
   */
  async expectSecondStage(guest: Running, mac: string, timeoutMs = 45000): Promise<string> {
    const marker = markerPattern(this.tftp.token, mac);
    const seen = await this.waitConsole(guest, new RegExp(`${marker.source}|${NOTHING_TO_BOOT.source}`), timeoutMs);
    if (!marker.test(seen)) throw new Error(`no second stage: the console says "${seen}"\n${this.diagnosis(guest)}`);
    return seen;
  }

  /** Waits until iPXE says it has nothing to boot (no offer); fails at once if the second stage runs. */
  async expectNoOffer(guest: Running, mac: string, timeoutMs = 45000): Promise<string> {
    const marker = markerPattern(this.tftp.token, mac);
    const seen = await this.waitConsole(guest, new RegExp(`${marker.source}|${NOTHING_TO_BOOT.source}`), timeoutMs);
    if (marker.test(seen)) throw new Error(`the second stage ran although no offer was expected\n${this.diagnosis(guest)}`);
    return plain(guest.output);
  }

  private async waitConsole(guest: Running, pattern: RegExp, timeoutMs: number): Promise<string> {
    try {
      return (await guest.waitFor(pattern, timeoutMs)).match[0];
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.diagnosis(guest)}`);
    }
  }

  diagnosis(guest: Running): string {
    return `--- console of ${guest.name} (last 2000 chars) ---\n${plain(guest.output).slice(-2000)}\n--- netboot log (tail) ---\n${this.site.logTail(40)}`;
  }

  async stop(): Promise<void> {
    const problems = await this.cleanup.run();
    if (problems.length > 0) throw new Error(`cleanup problems:\n${problems.join('\n')}`);
  }
}

/** Console text without ANSI escapes and carriage returns. */
export function plain(text: string): string {
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b[()][A-Za-z0-9]|\x1b[A-Za-z]/g, '').replace(/\r/g, '');
}
