// The SOFTWARE hive the tests use: the keys and values a Windows 11 Pro 23H2 leaves under
// Microsoft\Windows NT\CurrentVersion (and a few other keys, listed through lh, lf, li and ri
// lists), written by regf-writer.ts.
import { REG_BINARY, REG_EXPAND_SZ } from '../../protocols/registry/regf.ts';
import { dword, sz, type WriterKey, type WriterValue } from './regf-writer.ts';

export const BIG: WriterValue = { name: 'DigitalProductId4', type: REG_BINARY, data: Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 7) & 0xff)) };

/** A SOFTWARE hive as Windows 11 Pro 23H2 leaves it (the values the probe reads, and some others). */
export function softwareKeys(values: readonly WriterValue[] = windows11Pro()): WriterKey {
  return {
    name: 'ROOT',
    keys: [
      { name: 'Classes', list: 'li', keys: [{ name: '.txt' }, { name: '*' }] },
      {
        name: 'Microsoft', list: 'ri',
        keys: [
          { name: 'Windows', keys: [{ name: 'CurrentVersion' }] },
          { name: 'Windows NT', list: 'lf', keys: [{ name: 'CurrentVersion', values }, { name: 'Ölfeld' }] },
          { name: 'Cryptography' }, { name: 'Office' }, { name: 'Edge' },
        ],
      },
      { name: 'Policies' },
    ],
  };
}

export function windows11Pro(): WriterValue[] {
  return [
    sz('ProductName', 'Windows 10 Pro'), sz('EditionID', 'Professional'), sz('DisplayVersion', '23H2'),
    sz('ReleaseId', '2009'), sz('CurrentBuild', '22631'), sz('CurrentBuildNumber', '22631'), dword('UBR', 2861),
    { name: 'SystemRoot', type: REG_EXPAND_SZ, data: Buffer.from('C:\\WINDOWS\0', 'utf16le') }, BIG,
  ];
}

