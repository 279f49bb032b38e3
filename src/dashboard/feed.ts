/**
 * The dashboard's data feed: server-sent events, one `snapshot` event per interval (default 1 s)
 * to every connected page, computed once per tick however many pages listen, and not at all while
 * none does.
 */
import type { ServerResponse } from 'node:http';

import type { Telemetry, TelemetrySnapshot } from '../telemetry/index.js';
import type { AlertThresholds } from '../telemetry/index.js';

/** What a page receives: the telemetry snapshot and the thresholds it is judged against. */
export type DashboardSnapshot = TelemetrySnapshot & { thresholds: AlertThresholds | undefined };

export interface DashboardFeedOptions {
  /** Between two snapshots, in ms. Default 1000. */
  intervalMs?: number | undefined;
}

export class DashboardFeed {
  readonly #telemetry: Telemetry;
  readonly #intervalMs: number;
  readonly #clients = new Set<ServerResponse>();
  #timer: NodeJS.Timeout | undefined;

  constructor(telemetry: Telemetry, options: DashboardFeedOptions = {}) {
    this.#telemetry = telemetry;
    this.#intervalMs = options.intervalMs ?? 1000;
  }

  get clients(): number {
    return this.#clients.size;
  }

  snapshot(): DashboardSnapshot {
    return { ...this.#telemetry.snapshot(), thresholds: this.#telemetry.alerts?.thresholds };
  }

  /** Serves `GET /dashboard/events`: the stream stays open until the page goes away. */
  subscribe(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\n`);
    res.write(frame(this.snapshot()));
    this.#clients.add(res);
    res.on('close', () => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) this.#stop();
    });
    this.#start();
  }

  close(): void {
    this.#stop();
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  #start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
    this.#timer.unref();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (this.#clients.size === 0) return;
    const data = frame(this.snapshot());
    for (const res of this.#clients) res.write(data);
  }
}

function frame(snapshot: DashboardSnapshot): string {
  return `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
}
