// Images a site built itself (bootwiz) are kept in their own table and merged into the state the
// PXE server sees, unless a snapshot or update names the same id: a management server's snapshot
// that does not name them must not make the site forget what it built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StateBook } from '../../state/state-book.ts';
import { apply, withBook as bookIn } from '../helpers/state-book.ts';
import type { Image, SbsDocument } from '../../sbs/types.ts';
import { LINUXPE_X64, prebootImage } from '../../bootwiz/recipe.ts';

let n = 0;
const id = (): string => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
const at = (sec: number): string => new Date(Date.UTC(2026, 10, 21, 10, 0, sec)).toISOString();
const built = prebootImage(LINUXPE_X64);
const theirs: Image = { id: 'linuxpe-x64', name: 'Managed LinuxPE', arch: ['bios'], type: 'linux', kernel: 'k', initrd: ['i'] };
const other: Image = { id: 'other', name: 'Other', arch: ['bios'], type: 'nbp', bootFile: 'x.efi' };

const withBook = (fn: Parameters<typeof bookIn>[1]): void => bookIn('netboot-built-', fn);
const images = (book: StateBook): Image[] | null => book.state().images as Image[] | null;
const snapshot = (sec: number, list: Image[]): SbsDocument => ({ sbs: 1, id: id(), kind: 'images', issued: at(sec), images: list });

test('a built image is served at once, and a subscriber replaying the changes sees it', () => {
  withBook((book) => {
    apply(book, snapshot(0, []));
    const seq = book.lastSeq;
    assert.equal(book.putBuiltImage(built, new Date()), true);
    assert.deepEqual(images(book), [built]);
    const changes = book.changesSince(seq);
    assert.deepEqual(changes?.map((c) => c.change), [{ table: 'images', op: 'put', image: built }]);
  });
});

test('a snapshot that does not name it keeps it; one that names the id wins, until a later one leaves it out', () => {
  withBook((book) => {
    apply(book, snapshot(0, []));
    book.putBuiltImage(built, new Date());
    let seq = book.lastSeq;
    apply(book, snapshot(1, [other]));
    assert.deepEqual(images(book)?.map((i) => i.id), ['linuxpe-x64', 'other']);
    // What the feed sends carries the merged table (the server's copy replaces its own with it).
    const replace = book.changesSince(seq)!.at(-1)!.change as unknown as { images: Image[] };
    assert.deepEqual(replace.images.map((i) => i.id), ['linuxpe-x64', 'other']);
    apply(book, snapshot(2, [theirs, other]));
    assert.deepEqual(images(book)?.find((i) => i.id === 'linuxpe-x64'), theirs);
    // A rebuild while the management server's image holds the id changes nothing served.
    seq = book.lastSeq;
    assert.equal(book.putBuiltImage(built, new Date()), false);
    assert.equal(book.lastSeq, seq);
    apply(book, snapshot(3, [other]));
    assert.deepEqual(images(book)?.find((i) => i.id === 'linuxpe-x64'), built);
  });
});

test('an update naming the id wins: image puts it, image-remove takes it away', () => {
  withBook((book) => {
    apply(book, snapshot(0, []));
    book.putBuiltImage(built, new Date());
    const seq = book.lastSeq;
    apply(book, { sbs: 1, id: id(), kind: 'image-remove', issued: at(1), imageId: 'linuxpe-x64' });
    assert.deepEqual(images(book), []);
    assert.deepEqual(book.changesSince(seq)?.map((c) => c.change), [{ table: 'images', op: 'delete', id: 'linuxpe-x64' }]);
    apply(book, { sbs: 1, id: id(), kind: 'image', issued: at(2), image: theirs });
    assert.deepEqual(images(book), [theirs]);
  });
});

test('what the site built survives a restart', () => {
  withBook((book, reopen) => {
    apply(book, snapshot(0, [other]));
    book.putBuiltImage(built, new Date());
    const again = reopen();
    assert.deepEqual(images(again)?.map((i) => i.id), ['linuxpe-x64', 'other']);
    assert.deepEqual(again.state(), book.state());
  });
});
