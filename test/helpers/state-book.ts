// A StateBook on a real SQLite store in a temp folder, for tests of the spec's ordering rules.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { openStore } from '../../state/store.ts';
import { StateBook } from '../../state/state-book.ts';
import type { SbsDocument } from '../../sbs/types.ts';

/** Runs fn with a loaded book; reopen() closes the store and loads a new book from the same folder. */
export function withBook(prefix: string, fn: (book: StateBook, reopen: () => StateBook) => void): void {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let db = openStore(dir);
  try {
    const book = new StateBook(db, createMemoryLogger());
    book.load();
    fn(book, () => {
      db.close();
      db = openStore(dir);
      const b = new StateBook(db, createMemoryLogger());
      b.load();
      return b;
    });
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Applies documents as one batch, as a test source. */
export const apply = (book: StateBook, ...docs: SbsDocument[]) => book.applyBatch(docs.map((doc) => ({ doc, source: { file: null, source: 'test', now: new Date() } })));
