// A replica's package component alone in a process of its own (in-process parts, as the
// Interface builds them), with segments for files over 1 MiB: what segment-kill.test.ts kills.
//   node --import tsx test/packages/segment-node.ts <id> <config.toml>
// Prints "started" once serving; exits when its parent goes away.
import { loadConfig } from '../../platform/runtime/config.ts';
import { InProcessNode, type Site } from './sites.ts';

const [id, configPath] = process.argv.slice(2) as [string, string];
const config = loadConfig(configPath);
const node = new InProcessNode({ id, config, configPath, dir: '', cleanup: () => {} } as unknown as Site, { segments: { minFileBytes: 1024 * 1024 } });
await node.start();
process.stdout.write('started\n');
process.on('disconnect', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
