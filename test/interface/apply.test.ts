// The spec's ordering rules, applied to a real SQLite store in a temp folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StateBook } from '../../state/state-book.ts';
import { apply, withBook as bookIn } from '../helpers/state-book.ts';
import type { Client, SbsDocument } from '../../sbs/types.ts';

const MAC = '52:54:00:12:34:56';
let n = 0;
const id = (): string => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
const at = (sec: number): string => new Date(Date.UTC(2026, 10, 21, 10, 0, sec)).toISOString();
const boot = (image: string, once = true): Client['action'] => ({ type: 'boot', image, once });

function clientDoc(issued: string, action: Client['action'], mac = MAC): SbsDocument {
  return { sbs: 1, id: id(), kind: 'client', issued, client: { mac, action } };
}

const withBook = (fn: Parameters<typeof bookIn>[1]): void => bookIn('netboot-apply-', fn);
const actionOf = (book: StateBook, mac = MAC) => book.state().clients?.find((c) => c.mac === mac)?.action;

test('an instruction applied twice is a no-op the second time', () => {
  withBook((book) => {
    const doc = clientDoc(at(1), boot('a'));
    assert.deepEqual(apply(book, doc), ['applied']);
    const seq = book.lastSeq;
    assert.deepEqual(apply(book, doc), ['duplicate']);
    assert.equal(book.lastSeq, seq);
  });
});

test('a late old update is recorded but changes nothing', () => {
  withBook((book) => {
    apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(0), clients: [] });
    assert.deepEqual(apply(book, clientDoc(at(5), boot('new')), clientDoc(at(3), boot('old'))), ['applied', 'stale']);
    assert.deepEqual(actionOf(book), boot('new'));
  });
});

test('a removal leaves a tombstone that an older update cannot resurrect', () => {
  withBook((book) => {
    apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(0), clients: [] });
    apply(book, clientDoc(at(1), boot('a')));
    apply(book, { sbs: 1, id: id(), kind: 'client-remove', issued: at(5), mac: MAC });
    assert.equal(actionOf(book), undefined);
    assert.deepEqual(apply(book, clientDoc(at(4), boot('b'))), ['stale']);
    assert.equal(actionOf(book), undefined);
    assert.deepEqual(apply(book, clientDoc(at(6), boot('c'))), ['applied']);
    assert.deepEqual(actionOf(book), boot('c'));
  });
});

test('a snapshot replaces its table, then newer updates are applied again on top', () => {
  withBook((book) => {
    const other = '52:54:00:00:00:02';
    apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(0), clients: [{ mac: other, action: { type: 'local' } }] });
    apply(book, clientDoc(at(10), boot('newer')));
    apply(book, clientDoc(at(2), boot('older'), other));
    // The snapshot (issued 5) knows neither update's effect; the update issued at 10 survives it.
    apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(5), clients: [{ mac: MAC, action: boot('snap') }, { mac: other, action: { type: 'wait' } }] });
    assert.deepEqual(actionOf(book), boot('newer'));
    assert.deepEqual(actionOf(book, other), { type: 'wait' });
  });
});

test('a snapshot older than the one in force changes nothing', () => {
  withBook((book) => {
    apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(5), clients: [{ mac: MAC, action: boot('a') }] });
    assert.deepEqual(apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(1), clients: [] }), ['stale']);
    assert.deepEqual(actionOf(book), boot('a'));
  });
});

test('the state is complete only with config, clients and images snapshots', () => {
  withBook((book) => {
    apply(book, clientDoc(at(1), boot('a')));
    assert.equal(book.state().clients, null, 'an update alone does not make a table');
    apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(0), clients: [] });
    assert.deepEqual(actionOf(book), boot('a'), 'the newer update is applied on top of the snapshot');
    assert.equal(book.state().config, null);
  });
});

test('a consumed once-boot becomes local durably and survives an older snapshot', () => {
  withBook((book, reopen) => {
    apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(0), clients: [] });
    apply(book, clientDoc(at(1), boot('img')));
    assert.equal(book.recordEvent('ev-1', { kind: 'pxe-booted', mac: MAC, image: 'img', at: at(20) }, new Date()), true);
    assert.equal(book.recordEvent('ev-1', { kind: 'pxe-booted', mac: MAC, image: 'img', at: at(20) }, new Date()), false);
    assert.deepEqual(actionOf(book), { type: 'local' });
    const again = reopen();
    assert.deepEqual(actionOf(again), { type: 'local' }, 'durable across a restart');
    // The management server has not heard of the boot yet and re-sends the job in a snapshot.
    apply(again, { sbs: 1, id: id(), kind: 'clients', issued: at(15), clients: [{ mac: MAC, action: boot('img') }] });
    assert.deepEqual(actionOf(again), { type: 'local' }, 'no re-imaging loop');
    // A job issued after the boot is a new job and applies.
    apply(again, clientDoc(at(30), boot('img')));
    assert.deepEqual(actionOf(again), boot('img'));
  });
});

test('a change log lets a subscriber resume without gaps', () => {
  withBook((book, reopen) => {
    apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(0), clients: [] });
    const mid = book.lastSeq;
    apply(book, clientDoc(at(1), boot('a')), clientDoc(at(2), boot('b'), '52:54:00:00:00:09'));
    const changes = book.changesSince(mid);
    assert.deepEqual(changes?.map((c) => c.seq), [mid + 1, mid + 2]);
    assert.equal(book.changesSince(book.lastSeq + 5), null, 'a cursor from the future gets a snapshot');
    const again = reopen();
    assert.equal(again.lastSeq, book.lastSeq);
    assert.deepEqual(again.state(), book.state());
  });
});

test('an update older than the snapshot in force cannot bring back an object the snapshot left out', () => {
  withBook((book) => {
    apply(book, { sbs: 1, id: id(), kind: 'clients', issued: at(10), clients: [] });
    assert.deepEqual(apply(book, clientDoc(at(5), boot('late'))), ['stale']);
    assert.equal(actionOf(book), undefined);
  });
});

test('issued values compare as instants, whatever their offset; a leap second sorts last in its minute', async () => {
  const { issuedMs } = await import('../../state/apply.ts');
  assert.equal(issuedMs('2026-11-21T12:00:00+02:00'), issuedMs('2026-11-21T10:00:00Z'));
  assert.ok(issuedMs('2016-12-31T23:59:60Z') > issuedMs('2016-12-31T23:59:59.998Z'));
  assert.ok(issuedMs('2016-12-31T23:59:60Z') < issuedMs('2017-01-01T00:00:00Z'));
  assert.ok(issuedMs('0050-01-01T00:00:00Z') < issuedMs('1950-01-01T00:00:00Z'));
});
