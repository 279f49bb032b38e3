/**
 * A real HTTP front for balancing and resilience tests: forwards to a fixture, and can be told to
 * answer `503` (with a `Retry-After`) before reading anything, or be killed (every socket destroyed,
 * new connections refused) and revived on the same port. Nothing is mocked: the proxy under test
 * talks to it over loopback TCP exactly as it would to a server.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { forwardRequest } from './forwarder.js';

export interface Front {
  url: string;
  /** Requests received, answered 503 by the front, and forwarded to the fixture. */
  readonly counts: { received: number; unavailable: number; forwarded: number };
  /** The next `count` requests get `503` with this `Retry-After` (omitted when undefined). */
  refuse(count: number, retryAfter?: string): void;
  /** Destroys every connection and stops listening: callers see resets, then refused connections. */
  kill(): Promise<void>;
  /** Listens again on the same port. */
  revive(): Promise<void>;
  stop(): Promise<void>;
}

export async function startFront(target: string): Promise<Front> {
  const to = new URL(target);
  const counts = { received: 0, unavailable: 0, forwarded: 0 };
  let refusals = 0;
  let retryAfter: string | undefined;
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    counts.received++;
    if (refusals > 0) {
      refusals--;
      counts.unavailable++;
      req.resume();
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/plain' };
      if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
      res.writeHead(503, headers);
      res.end('busy');
      return;
    }
    counts.forwarded++;
    forwardRequest(req, res, to);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let listening = true;
  const kill = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  return {
    url: `http://127.0.0.1:${port}${to.pathname}`,
    counts,
    refuse(count, after) {
      refusals = count;
      retryAfter = after;
    },
    kill,
    async revive() {
      if (listening) return;
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      listening = true;
    },
    stop: kill,
  };
}

/** A clock that runs with real time and can be moved forward: latencies stay real, waits can be skipped. */
export function advanceableClock(): { now(): number; advance(ms: number): void } {
  let offset = 0;
  return {
    now: () => performance.now() + offset,
    advance(ms: number) {
      offset += ms;
    },
  };
}
