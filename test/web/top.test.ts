// `netboot top` in an 80x30 terminal (tmux): the live figures and the machines change on the
// screen as a machine asks for an offer and fetches its file, without the command being run again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { waitFor } from '../helpers/env.ts';
import { NETBOOT } from '../cli/cli-run.ts';
import { startWebSite } from './web-site.ts';

const SOCKET = `netboot-top-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
const screen = (): string[] => tmux('capture-pane', '-p', '-t', 'top').replace(/\n+$/, '').split('\n');
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

test('netboot top: live figures and machines in an 80-column terminal', async (t) => {
  assert.equal(spawnSync('sh', ['-c', 'command -v tmux']).status, 0, 'tmux is needed (installed by .ci/run)');
  const s = await startWebSite();
  t.after(async () => {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    await s.stop();
  });
  tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', '80', '-y', '30', `env -u NETBOOT_CONFIG ${quote(NETBOOT)} top --config ${quote(s.site.configPath)}; sleep 600`);
  const shows = (what: string, match: (text: string) => boolean): Promise<string[]> =>
    waitFor(what, () => {
      const lines = screen();
      return match(lines.join('\n')) ? lines : undefined;
    }, 60_000, 100).catch((err: Error) => assert.fail(`${err.message}; the screen:\n${screen().join('\n')}`));

  const first = await shows('the first view', (x) => /^server +serving +\d+ +dhcp=\d+ proxy=\d+$/m.test(x) && x.includes('no PXE requests seen'));
  assert.match(first.join('\n'), /PXE 0 requests, 0 offers · TFTP 0 active, 0 done/);
  assert.match(first.join('\n'), /SBS 3 applied, 0 rejected/);

  s.discover(0x3001);
  const machine = await shows('the machine and the figures', (x) => /^52:54:00:12:34:58 +efi-x64 +\d+s +answered: snponly\.efi$/m.test(x) && /PXE 1 requests, 1 offers/.test(x));
  assert.ok(machine.every((l) => l.length <= 80));

  assert.equal(await s.tftpGet(), 256 * 1024);
  await shows('the TFTP transfer counted', (x) => /TFTP 0 active, 1 done, 256\.0 KiB sent/.test(x));
  // The one screen, redrawn in place: the header line appears once.
  assert.equal(screen().filter((l) => l.startsWith('netboot top · test-site')).length, 1);
});
