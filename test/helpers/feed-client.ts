// A ws client for the Interface's state feed, collecting what it receives (tests only). It proves
// the local key of the data folder first, as the PXE server does.
import WebSocket from 'ws';
import type { FromInterface, ToInterface } from '../../boot/feed-protocol.ts';
import { ClientHandshake } from '../../platform/trust/peer-handshake.ts';
import { LOCAL_CLIENT_ID, LOCAL_SERVER_ID, LocalKey } from '../../platform/trust/local-key.ts';
import { waitFor } from './env.ts';

export class FeedClient {
  readonly messages: FromInterface[] = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(data.toString()) as FromInterface));
  }

  static async connect(port: number, dataDir: string): Promise<FeedClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/feed`);
    const handshake = new ClientHandshake(LocalKey.of(dataDir).get(), LOCAL_CLIENT_ID, LOCAL_SERVER_ID);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.on('close', (code) => reject(new Error(`feed closed (code ${code})`)));
      const onMessage = (data: WebSocket.RawData): void => {
        try {
          const step = handshake.next(data.toString());
          if (step.reply !== null) return void ws.send(step.reply);
          ws.off('message', onMessage);
          resolve();
        } catch (err) {
          reject(err as Error);
        }
      };
      ws.on('message', onMessage);
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
