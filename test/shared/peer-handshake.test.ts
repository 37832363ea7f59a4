import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ClientHandshake, ServerHandshake, type SealedChannel } from '../../platform/trust/peer-handshake.ts';

const KEY = randomBytes(32);

function connect(clientKey: Buffer, opts: { dial?: string; serverKeys?: Record<string, Buffer> } = {}): { client: SealedChannel; server: SealedChannel } {
  const server = new ServerHandshake('a', (id) => (opts.serverKeys ?? { b: KEY })[id] ?? null);
  const client = new ClientHandshake(clientKey, 'b', opts.dial ?? 'a');
  const hello = client.next(server.challenge);
  assert.ok(hello.reply !== null);
  const accepted = server.accept(hello.reply);
  assert.equal(accepted.peerId, 'b');
  const done = client.next(accepted.welcome);
  assert.ok(done.channel !== null);
  return { client: done.channel, server: accepted.channel };
}

test('both ends derive the same session: frames travel both ways, in order', () => {
  const { client, server } = connect(KEY);
  assert.equal(server.open(client.seal('one')), 'one');
  assert.equal(server.open(client.seal('two')), 'two');
  assert.equal(client.open(server.seal('back')), 'back');
});

test('a replayed, reordered, reflected or altered frame is refused', () => {
  const { client, server } = connect(KEY);
  const first = client.seal('one');
  const second = client.seal('two');
  assert.throws(() => server.open(second), /out of order/);
  assert.equal(server.open(first), 'one');
  assert.throws(() => server.open(first), /out of order/);
  assert.throws(() => client.open(client.seal('mine')), /MAC does not verify|out of order/);
  const forged = JSON.parse(server.seal('x')) as { n: number; body: string; mac: string };
  assert.throws(() => client.open(JSON.stringify({ ...forged, body: 'y' })), /MAC does not verify/);
});

test('the server refuses a wrong key, an unknown peer and a malformed hello, with the reason', () => {
  const server = new ServerHandshake('a', (id) => (id === 'b' ? KEY : null));
  const wrong = new ClientHandshake(randomBytes(32), 'b', 'a').next(server.challenge).reply!;
  assert.throws(() => server.accept(wrong), { message: 'wrong key (proof does not verify)' });
  assert.equal(server.peerId, 'b');
  const stranger = new ClientHandshake(KEY, 'x', 'a').next(server.challenge).reply!;
  assert.throws(() => server.accept(stranger), { message: 'not a configured peer' });
  assert.throws(() => server.accept('{"type":"hello"}'), { message: 'malformed hello' });
  assert.throws(() => server.accept('not json'), { message: 'hello is not JSON' });
});

test('the client refuses a server with another name or one that cannot prove the key', () => {
  const server = new ServerHandshake('a', () => KEY);
  assert.throws(() => new ClientHandshake(KEY, 'b', 'c').next(server.challenge), { message: 'the server says it is "a", not peer c' });
  const client = new ClientHandshake(KEY, 'b', 'a');
  client.next(server.challenge);
  // An impostor answering the hello without the key can only guess the proof.
  assert.throws(() => client.next(JSON.stringify({ type: 'welcome', proof: randomBytes(32).toString('hex') })), { message: 'the peer did not prove it holds the shared key' });
});
