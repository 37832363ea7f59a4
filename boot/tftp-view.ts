// What MTFTP needs to answer netboot/ paths itself: the state from the Interface, and the machines
// whose `once` boot this server consumed but the feed does not show yet. MTFTP follows it on the
// local channel (`tftp.follow`: a snapshot, then a push for every change, in the order the server
// applies them) and runs the same pure resolver (tftp-resolve.ts) on it, so a machine's TFTP
// request never waits for a second process. What a machine boots is still decided here: MTFTP
// only evaluates the server's own view, and a `once` is consumed only by `tftp.fetched`.
import type { ChannelPeer } from '../platform/local/local-channel.ts';
import type { FeedChange, FeedState } from './feed-protocol.ts';

export const TFTP_VIEW_TOPIC = 'tftp.view';

export interface TftpView {
  readonly state: FeedState;
  readonly consumed: readonly string[];
}

/** One push: a new state (the Interface sent a snapshot) or one change, and the consumed set. */
export interface TftpViewPush {
  readonly state?: FeedState;
  readonly change?: FeedChange;
  readonly consumed: readonly string[];
}

export class TftpViewPublisher {
  private readonly followers = new Set<ChannelPeer>();

  get count(): number {
    return this.followers.size;
  }

  /** Registers `peer` and returns the view it starts from. */
  follow(peer: ChannelPeer, view: TftpView): TftpView {
    this.followers.add(peer);
    peer.onClose(() => this.followers.delete(peer));
    return view;
  }

  publish(push: TftpViewPush): void {
    for (const peer of this.followers) if (peer.open) peer.push(TFTP_VIEW_TOPIC, push);
  }
}
