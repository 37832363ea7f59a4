// A disk to capture from or deploy to: a block device (/dev/sda, /dev/loop3) or a raw image file.
// Size and sector size come from the kernel (blockdev) for devices, from stat for files; model
// and serial from lsblk, where there are any, else from sysfs (LinuxPE has no lsblk): the same
// attributes the agent's `serial:` disk choice matches (images/agent/find-disk.ts).
import { execFile } from 'node:child_process';
import { open, readFile, realpath, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NetbootError } from '../platform/runtime/errors.ts';

const run = promisify(execFile);

export interface Disk {
  readonly path: string;
  readonly sizeBytes: number;
  readonly sectorBytes: number;
  readonly model: string | null;
  readonly serial: string | null;
  readonly isBlockDevice: boolean;
  read(offset: number, length: number): Promise<Buffer>;
  /** Fills `into` from `offset` (a reused buffer: no allocation per read). Absent: read() and a copy. */
  readInto?(offset: number, into: Buffer): Promise<void>;
  write(offset: number, bytes: Buffer): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `sectorBytes`: the logical sector size of an image file (512 unless said: a file has none of
 * its own; images/sector-size.ts guesses it). A block device's comes from the kernel, and a
 * different one asked for is refused.
 */
export async function openDisk(path: string, mode: 'r' | 'r+', opts: { sectorBytes?: number } = {}): Promise<Disk> {
  const fh: FileHandle = await open(path, mode);
  try {
    const st = await fh.stat();
    const isBlockDevice = st.isBlockDevice();
    let sizeBytes = st.size;
    let sectorBytes = opts.sectorBytes ?? 512;
    if (sectorBytes !== 512 && sectorBytes !== 4096) throw new NetbootError('SECTOR_SIZE', `sector size ${sectorBytes}: 512 or 4096`);
    let model: string | null = null;
    let serial: string | null = null;
    if (isBlockDevice) {
      sizeBytes = Number((await run('blockdev', ['--getsize64', path])).stdout.trim());
      sectorBytes = Number((await run('blockdev', ['--getss', path])).stdout.trim());
      if (opts.sectorBytes !== undefined && opts.sectorBytes !== sectorBytes) throw new NetbootError('SECTOR_SIZE', `${path} has ${sectorBytes}-byte logical sectors, not ${opts.sectorBytes}`);
      try {
        const j = JSON.parse((await run('lsblk', ['-J', '-d', '-o', 'MODEL,SERIAL', path])).stdout) as { blockdevices: { model: string | null; serial: string | null }[] };
        model = j.blockdevices[0]?.model?.trim() || null;
        serial = j.blockdevices[0]?.serial?.trim() || null;
      } catch {
        // lsblk missing (the preboot environment) or silent: sysfs below
      }
      if (model === null || serial === null) {
        const id = await sysfsIdentity(await devName(path));
        model ??= id.model;
        serial ??= id.serial;
      }
    } else if (!st.isFile()) {
      throw new NetbootError('DISK_KIND', `${path} is neither a block device nor a file`);
    }
    const readInto = async (offset: number, buf: Buffer): Promise<void> => {
      const length = buf.length;
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new NetbootError('DISK_SHORT_READ', `${path}: read past the end at byte ${offset + done}`);
        done += bytesRead;
      }
    };
    const read = async (offset: number, length: number): Promise<Buffer> => {
      const buf = Buffer.allocUnsafe(length);
      await readInto(offset, buf);
      return buf;
    };
    const write = async (offset: number, bytes: Buffer): Promise<void> => {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, offset + done);
        done += bytesWritten;
      }
    };
    return { path, sizeBytes, sectorBytes, model, serial, isBlockDevice, read, readInto, write, sync: () => fh.sync(), close: () => fh.close() };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** The kernel's name of a device node (/dev/sda -> sda, /dev/cciss/c0d0 -> cciss!c0d0), links followed. */
async function devName(path: string): Promise<string> {
  const real = await realpath(path).catch(() => path);
  return (real.startsWith('/dev/') ? real.slice('/dev/'.length) : real.slice(real.lastIndexOf('/') + 1)).replaceAll('/', '!');
}

/**
 * Model and serial of block device `name` from sysfs: device/model; device/serial (NVMe, some
 * SCSI), else serial (virtio-blk). Null where the kernel has none (loop, most SATA disks' serial).
 */
export async function sysfsIdentity(name: string, sysDir = '/sys'): Promise<{ model: string | null; serial: string | null }> {
  const dir = join(sysDir, 'class', 'block', name);
  const attr = (f: string): Promise<string | null> => readFile(join(dir, f), 'utf8').then((t) => t.trim() || null, () => null);
  return { model: await attr('device/model'), serial: (await attr('device/serial')) ?? (await attr('serial')) };
}
