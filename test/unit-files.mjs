// The quick tier (`npm run test:unit`): the pure and loopback tests that need no root (no network
// namespaces, loop devices, device nodes, QEMU or other users) and no downloads, and take seconds.
// `npm test` runs every file. Prints one path per line.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Folders of the quick tier. */
/** Single pure files from folders that otherwise need root or QEMU. */
const EXTRA = ['test/httpboot/grub-config.test.ts', 'test/httpboot/http-answer.test.ts', 'test/httpboot/pcap.test.ts', 'test/httpboot/secure-boot-explain.test.ts'];

const FOLDERS = ['test/layers', 'test/sbs', 'test/config', 'test/shared', 'test/server', 'test/mtftp', 'test/interface', 'test/packages', 'test/cli-chain', 'test/jobs', 'test/trust', 'test/signal'];

/** Files in those folders that need root or take tens of seconds, and why. */
const LEFT_OUT = [
  'test/sbs/cli.test.ts', // many CLI processes: tens of seconds
  'test/mtftp/lossy.test.ts', // network namespaces and netem: root
  'test/mtftp/send-paths.test.ts', // every transfer test again on each send path: tens of seconds
  'test/mtftp/root.test.ts', // device nodes (mknod): root
  'test/mtftp/interop.test.ts', // a device node in its traversal corpus: root
  'test/server/io-paths.test.ts', // the service tests again on node:dgram: tens of seconds
  'test/mtftp/bounds.test.ts', // floods from many addresses, RSS of a child: tens of seconds
  'test/interface/crash-recovery.test.ts', // ten SIGKILLs: tens of seconds
  'test/packages/kill-resume.test.ts', // SIGKILLs mid-sync: tens of seconds
  'test/packages/segment-kill.test.ts', // twenty SIGKILLs mid-build: tens of seconds
  'test/packages/reflink-fs.test.ts', // loop-mounted XFS and ext4: root
  'test/trust/local-trust.test.ts', // runs a process as nobody: root
];

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith('.test.ts') ? [path] : [];
  });
}

const files = [...FOLDERS.flatMap((f) => walk(f)).filter((f) => !LEFT_OUT.includes(f)), ...EXTRA].sort();
process.stdout.write(files.join('\n') + '\n');
