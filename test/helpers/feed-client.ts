// A ws client for the Interface's state feed, collecting what it receives (tests only).
import WebSocket from 'ws';
import type { FromInterface, ToInterface } from '../../boot/feed-protocol.ts';
import { waitFor } from './env.ts';

export class FeedClient {
  readonly messages: FromInterface[] = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(data.toString()) as FromInterface));
  }

  static async connect(port: number): Promise<FeedClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/feed`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new FeedClient(ws);
  }

  send(msg: ToInterface): void {
    this.ws.send(JSON.stringify(msg));
  }

  async next<T extends FromInterface['type']>(type: T, predicate: (m: Extract<FromInterface, { type: T }>) => boolean = () => true, timeoutMs = 10000): Promise<Extract<FromInterface, { type: T }>> {
    return waitFor(`a ${type} message`, () => this.messages.find((m): m is Extract<FromInterface, { type: T }> => m.type === type && predicate(m as Extract<FromInterface, { type: T }>)), timeoutMs);
  }

  close(): void {
    this.ws.close();
  }
}
