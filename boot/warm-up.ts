// The answer path, run on made-up requests when the server starts serving: V8 compiles a
// function only when it is first called, so without this the first PXE client after a start
// waits for decode, the policy and the encoder to be compiled (5 to 15 ms measured, against
// well under 1 ms once compiled). Pure: nothing is sent, logged or recorded. It runs the same
// function the socket handler runs (boot/answer.ts), on a state of its own.
import { answer, type AnswerState, type Arrival } from './answer.ts';
import type { FeedState } from './feed-protocol.ts';
import type { ReplyOptionCache } from './pxe-reply.ts';
import { requestBytes } from './sample-request.ts';

const MAC_TEXT = '02:00:00:00:00:01';

/** A state that gives the made-up machine an offer, whatever the real one says. */
const STATE: FeedState = {
  config: { respond: 'known', unknown: { type: 'local' }, responseDelayMs: 0, bootFiles: { bios: 'undionly.kpxe' } },
  clients: [{ mac: MAC_TEXT, action: { type: 'boot', image: 'warm-up', once: false } }],
  images: [{ id: 'warm-up', name: 'warm-up', arch: ['bios'], type: 'linux', kernel: 'vmlinuz' }],
  predefined: null,
};

/** A DISCOVER on 67 and a boot server request on 4011. */
export const WARM_UP_REQUESTS: readonly { readonly bytes: Buffer; readonly arrival: Arrival }[] = [
  { bytes: requestBytes({ mac: MAC_TEXT, arch: 'bios', ipxe: false, giaddr: null }), arrival: { from: { address: '0.0.0.0', port: 68 }, via: 'dhcp' } },
  { bytes: requestBytes({ mac: MAC_TEXT, arch: 'bios', ipxe: false, giaddr: null, type: 'boot-server-request', ciaddr: '10.0.0.2' }), arrival: { from: { address: '10.0.0.2', port: 4011 }, via: 'proxy' } },
];

/** The state the warm-up answers from: the made-up machine is offered a file from `serverAddress`. */
export function warmUpState(serverAddress: string, cache?: ReplyOptionCache): AnswerState {
  const chosen = { address: serverAddress, why: 'warm-up', subnet: null };
  return {
    feed: STATE, consumed: new Set(), replyMode: 'source', isOurs: () => true, segments: [],
    forSegment: () => chosen, address: () => chosen, ...(cache === undefined ? {} : { cache }),
  };
}

/**
 * Runs the warm-up requests through the answer path `rounds` times; throws if one is not answered.
 * `state`: what to answer from (default warmUpState); the PXE server passes its own live state
 * object standing in for warmUpState, so that the compiler sees one shape of state only.
 */
export function warmUp(serverAddress: string, cache?: ReplyOptionCache, rounds = 64, state: AnswerState = warmUpState(serverAddress, cache)): void {
  for (let i = 0; i < rounds; i++) {
    for (const { bytes, arrival } of WARM_UP_REQUESTS) {
      const a = answer(bytes, arrival, state);
      if (a.kind !== 'reply') throw new Error(`warm-up request not answered: ${a.kind}: ${'reason' in a ? a.reason : ''}`);
    }
  }
}
