// The local channel: its line framing (fixtures, exact errors) and a real server and client on a
// Unix socket: replies matched by id with several in flight, refusals, bad input from a raw
// connection, a server restart under a kept-open connection, a server that is not there.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetbootError, ProtocolError } from '../../platform/runtime/errors.ts';
import { LineSplitter, decodeMessage, encodeLine } from '../../platform/local/json-lines.ts';
import { ChannelClient, ChannelServer, channelSocketPath, type ChannelPeer } from '../../platform/local/local-channel.ts';
import { createMemoryLogger } from '../../platform/runtime/logger.ts';
import { waitFor } from '../helpers/env.ts';

const dir = mkdtempSync(join(tmpdir(), 'netboot-channel-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const text = (lines: Buffer[]): string[] => lines.map((l) => l.toString('utf8'));

test('framing: a line per message, split anywhere, several per chunk; newlines in strings stay escaped', () => {
  assert.equal(encodeLine({ id: 1, s: 'a\nb' }).toString(), '{"id":1,"s":"a\\nb"}\n');
  const split = new LineSplitter();
  assert.deepEqual(text(split.push(Buffer.from('{"id":1}\n{"i'))), ['{"id":1}']);
  assert.deepEqual(text(split.push(Buffer.from('d":'))), []);
  assert.deepEqual(text(split.push(Buffer.from('2}\n{"id":3}\n{"id":4}\n'))), ['{"id":2}', '{"id":3}', '{"id":4}']);
  // UTF-8 cut in the middle of a character comes back whole.
  const bytes = encodeLine({ id: 5, s: 'é€' });
  assert.deepEqual(text([...split.push(bytes.subarray(0, 16)), ...split.push(bytes.subarray(16))]), ['{"id":5,"s":"é€"}']);
});

test('framing: an over-long line and messages that are not objects with an id are refused with their reason', () => {
  const split = new LineSplitter(8);
  assert.deepEqual(text(split.push(Buffer.from('12345678\n'))), ['12345678']);
  assert.deepEqual(split.push(Buffer.from('12345')), []);
  assert.throws(() => split.push(Buffer.from('6789')), new ProtocolError('channel', 'line longer than 8 bytes'));
  assert.throws(() => new LineSplitter(8).push(Buffer.from('123456789\n')), /channel: line longer than 8 bytes/);
  assert.throws(() => decodeMessage(Buffer.from('{"id":')), /^ProtocolError: channel: line is not JSON$/);
  assert.throws(() => decodeMessage(Buffer.from('[1]')), /channel: message is not a JSON object/);
  assert.throws(() => decodeMessage(Buffer.from('null')), /channel: message is not a JSON object/);
  assert.throws(() => decodeMessage(Buffer.from('{"op":"x"}')), /channel: message has no id/);
  assert.throws(() => decodeMessage(Buffer.from('{"id":-1}')), /channel: message has no id/);
  assert.deepEqual(decodeMessage(Buffer.from('{"id":7,"op":"x"}')), { id: 7, op: 'x' });
});

function server(path: string, log = createMemoryLogger()): ChannelServer {
  return new ChannelServer(path, {
    echo: (body) => body,
    // Answers after `ms`: later requests can be answered first.
    slow: (body) => new Promise((resolve) => setTimeout(() => resolve(body), (body as { ms: number }).ms)),
    refuse: () => {
      throw new NetbootError('NOPE', 'not for you');
    },
    broken: () => {
      throw new Error('handler bug');
    },
  }, log);
}

test('channel: several requests in flight on one connection, each gets its own reply; refusals say why', async () => {
  const path = channelSocketPath(join(dir, 'a'), 'server');
  const log = createMemoryLogger();
  const s = server(path, log);
  await s.start();
  const client = new ChannelClient(path);
  try {
    const replies = await Promise.all([
      client.call('slow', { ms: 60, n: 1 }),
      client.call('slow', { ms: 1, n: 2 }),
      client.call('echo', { n: 3 }),
    ]);
    assert.deepEqual(replies, [{ ms: 60, n: 1 }, { ms: 1, n: 2 }, { n: 3 }]);
    await assert.rejects(client.call('refuse', {}), { code: 'CHANNEL_REFUSED', message: 'not for you' });
    await assert.rejects(client.call('nothing', {}), { code: 'CHANNEL_REFUSED', message: 'no such operation: "nothing"' });
    await assert.rejects(client.call('broken', {}), { code: 'CHANNEL_REFUSED', message: 'handler bug' });
    assert.equal(log.records.filter((r) => r.msg === 'channel request failed').length, 1, 'a handler bug is logged; a refusal is not');
    assert.deepEqual(await client.call('echo', 'still serving'), 'still serving');
  } finally {
    client.close();
    await s.stop();
  }
});

test('channel: bad lines from a raw connection are dropped with a reason; an over-long line drops only that connection', async () => {
  const path = channelSocketPath(join(dir, 'b'), 'server');
  const log = createMemoryLogger();
  const s = server(path, log);
  await s.start();
  const raw = connect(path);
  let got = '';
  raw.on('data', (c: Buffer) => (got += c.toString()));
  const closed = new Promise<void>((resolve) => raw.on('close', () => resolve()));
  const client = new ChannelClient(path);
  try {
    raw.write('not json\n{"op":"echo"}\n[]\n{"id":9,"op":"echo","body":"after the garbage"}\n');
    await waitFor('the good message answered', () => (got.includes('\n') ? true : undefined));
    assert.equal(got, '{"id":9,"ok":true,"body":"after the garbage"}\n');
    assert.deepEqual(log.records.filter((r) => r.msg === 'channel message dropped').map((r) => r.reason), [
      'channel: line is not JSON', 'channel: message has no id', 'channel: message is not a JSON object',
    ]);
    raw.write(Buffer.alloc(64 * 1024 * 1024 + 1, 0x61));
    await closed;
    assert.ok(log.records.some((r) => r.msg === 'channel connection dropped' && r.reason === 'channel: line longer than 67108864 bytes'));
    assert.equal(await client.call('echo', 'others unaffected'), 'others unaffected');
  } finally {
    raw.destroy();
    client.close();
    await s.stop();
  }
});

test('channel: a server restart under a kept-open connection costs one retry; no server, no reply, clear errors', async () => {
  const path = channelSocketPath(join(dir, 'c'), 'server');
  let s = server(path);
  await s.start();
  const client = new ChannelClient(path, 300);
  try {
    assert.equal(await client.call('echo', 1), 1);
    await s.stop();
    s = server(path);
    await s.start();
    assert.equal(await client.call('echo', 2), 2, 'made again on a new connection');
    await s.stop();
    await assert.rejects(client.call('echo', 3), (err: NetbootError) => err.code === 'CHANNEL_CLOSED' && /ENOENT/.test(err.message));
    s = server(path);
    await s.start();
    await assert.rejects(client.call('slow', { ms: 1000 }), { code: 'CHANNEL_TIMEOUT', message: `${path}: no reply within 300 ms` });
    assert.equal(await client.call('echo', 4), 4, 'a late reply to a timed-out call is ignored');
  } finally {
    client.close();
    await s.stop();
  }
});

test('channel: follow gets the reply, then every push in order; the follower hears when the connection ends', async () => {
  const path = channelSocketPath(join(dir, 'd'), 'server');
  const peers: ChannelPeer[] = [];
  const s = new ChannelServer(path, {
    follow: (_body, peer) => {
      peers.push(peer);
      // Pushed in the same turn as the reply: they must still arrive after it.
      queueMicrotask(() => peer.push('t', 1));
      return 'snapshot';
    },
    echo: (body) => body,
  }, createMemoryLogger());
  await s.start();
  const client = new ChannelClient(path);
  const seen: unknown[] = [];
  let lost = '';
  try {
    const reply = await client.follow('follow', null, (topic, body) => seen.push([topic, body]), (reason) => (lost = reason));
    seen.unshift(['reply', reply]);
    for (let i = 2; i <= 5; i++) peers[0]!.push('t', i);
    assert.equal(await client.call('echo', 'between pushes'), 'between pushes');
    await waitFor('five pushes', () => (seen.length === 6 ? true : undefined));
    assert.deepEqual(seen, [['reply', 'snapshot'], ['t', 1], ['t', 2], ['t', 3], ['t', 4], ['t', 5]]);
    assert.equal(peers[0]!.open, true);
    await s.stop();
    await waitFor('lost', () => (lost !== '' ? true : undefined));
    assert.equal(peers[0]!.open, false);
    await assert.rejects(client.follow('follow', null, () => undefined, () => undefined), { code: 'CHANNEL_CLOSED' });
  } finally {
    client.close();
    await s.stop();
  }
});
