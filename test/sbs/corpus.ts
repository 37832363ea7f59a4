// The SBS corpus on disk: valid documents (each with its expected parse as `<name>.parsed.json`)
// and invalid ones, each pinned to the field and problem it must be rejected with.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const CORPUS = join(import.meta.dirname, 'corpus');
export const VALID_DIR = join(CORPUS, 'valid');
export const INVALID_DIR = join(CORPUS, 'invalid');

export interface Expectation {
  readonly field: string;
  readonly problem: string;
}

export function sbsFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.sbs')).sort();
}

export function invalidExpectations(): Record<string, Expectation> {
  return JSON.parse(readFileSync(join(INVALID_DIR, 'expected.json'), 'utf8')) as Record<string, Expectation>;
}
