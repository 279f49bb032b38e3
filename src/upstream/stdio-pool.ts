import { RelayError, RelayErrorCode } from '../errors/index.js';
import { Admission } from './admission.js';
import { NotificationListeners } from './listeners.js';
import { abortedBeforeStart } from './call.js';
import { StdioProcess } from './stdio-process.js';
import { WantedChanges } from './subscriptions.js';
import type {
  CallOptions,
  ChangeSubscription,
  NotificationListener,
  Upstream,
  UpstreamInfo,
  UpstreamOptions,
} from './types.js';

const RESPAWN_BASE_MS = 100;
const RESPAWN_MAX_MS = 10_000;
/** A process that lived this long before dying resets the backoff: it was not crash-looping. */
const HEALTHY_LIFETIME_MS = 10_000;

/**
 * A stdio upstream: `processes` child processes sharing the calls, each call sent to the one with
 * the fewest in flight. A process that dies fails only its own calls; the next call starts a new one,
 * with exponential backoff while the command keeps crashing.
 */
export class StdioUpstream implements Upstream {
  readonly name: string;
  readonly #options: UpstreamOptions;
  readonly #admission: Admission;
  readonly #slots: (StdioProcess | undefined)[];
  readonly #starting: (Promise<StdioProcess> | undefined)[];
  readonly #listeners = new NotificationListeners();
  readonly #wanted = new WantedChanges();
  #info: UpstreamInfo | undefined;
  #connecting: Promise<UpstreamInfo> | undefined;
  #closed = false;
  #failures = 0;
  #lastStart = 0;

  constructor(options: UpstreamOptions) {
    this.name = options.name;
    this.#options = options;
    const processes = options.processes ?? 1;
    this.#slots = new Array<StdioProcess | undefined>(processes).fill(undefined);
    this.#starting = new Array<Promise<StdioProcess> | undefined>(processes).fill(undefined);
    this.#admission = new Admission(
      options.name,
      options.connectionPoolSize,
      options.maxQueue ?? Math.max(1000, options.connectionPoolSize * 10),
    );
  }

  get info(): UpstreamInfo | undefined {
    return this.#info;
  }

  get load() {
    return { inFlight: this.#admission.inFlight, queued: this.#admission.queued, capacity: this.#admission.capacity };
  }

  /** The pids of the running processes, for tests and resource monitoring. */
  get pids(): number[] {
    return this.#slots.flatMap((p) => (p?.alive && p.pid !== undefined ? [p.pid] : []));
  }

  connect(signal?: AbortSignal): Promise<UpstreamInfo> {
    if (this.#info) return Promise.resolve(this.#info);
    // Every process of the pool starts and negotiates in parallel; one that works is enough.
    this.#connecting ??= Promise.allSettled(this.#slots.map((_, index) => this.#ensure(index)))
      .then((outcomes) => {
        const started = outcomes.find((o) => o.status === 'fulfilled');
        if (!started) throw (outcomes[0] as PromiseRejectedResult).reason;
        this.#info = started.value.info;
        return started.value.info!;
      })
      .finally(() => {
        this.#connecting = undefined;
      });
    if (!signal) return this.#connecting;
    return raceAbort(this.#connecting, signal, () => abortedBeforeStart(this.name, 'connect', signal));
  }

  async request(method: string, params: Record<string, unknown> | undefined, options?: CallOptions): Promise<unknown> {
    const signal = options?.signal;
    if (signal?.aborted) throw abortedBeforeStart(this.name, method, signal);
    if (this.#closed) throw this.#closedError();
    if (!this.#admission.tryAcquire()) {
      await this.#admission.acquire(
        this.#options.queueTimeoutMs ?? options?.timeoutMs ?? this.#options.timeoutMs,
        signal,
      );
    }
    try {
      if (!this.#info) await this.connect(signal);
      const process = this.#pick() ?? (await this.#ensure(this.#firstFreeSlot()));
      return await process.call(method, params, options);
    } finally {
      this.#admission.release();
    }
  }

  onNotification(listener: NotificationListener): () => void {
    return this.#listeners.add(listener);
  }

  /** Every process is its own server instance with its own state: each one is subscribed. */
  async subscribe(subscription: ChangeSubscription): Promise<void> {
    if (this.#closed) throw this.#closedError();
    this.#wanted.merge(subscription);
    if (!this.#info) await this.connect();
    const live = this.#slots.filter((p): p is StdioProcess => p?.alive === true);
    await Promise.all(live.map((process) => process.subscribe(this.#wanted)));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#admission.rejectAll(this.#closedError());
    await Promise.allSettled(this.#starting.filter((p): p is Promise<StdioProcess> => p !== undefined));
    await Promise.all(this.#slots.map((p) => (p ? p.close() : Promise.resolve())));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * The live process with the fewest calls in flight; starts the others in the background. A slot
   * whose process died is refilled even while processes keep dying (`#spawn` waits the backoff
   * first): otherwise one early death would leave the pool a process short for good.
   */
  #pick(): StdioProcess | undefined {
    let best: StdioProcess | undefined;
    let empty = false;
    for (let i = 0; i < this.#slots.length; i++) {
      const process = this.#slots[i];
      if (process?.alive) {
        if (best === undefined || process.inFlight < best.inFlight) best = process;
      } else if (this.#starting[i] === undefined) {
        empty = true;
      }
    }
    // Without a live process the caller starts one itself and waits for it.
    if (empty && best !== undefined) {
      for (let i = 0; i < this.#slots.length; i++) {
        if (!this.#slots[i]?.alive && this.#starting[i] === undefined) this.#ensure(i).catch(() => {});
      }
    }
    return best;
  }

  #firstFreeSlot(): number {
    const index = this.#slots.findIndex((p) => !p?.alive);
    return index === -1 ? 0 : index;
  }

  #ensure(index: number): Promise<StdioProcess> {
    const existing = this.#slots[index];
    if (existing?.alive) return Promise.resolve(existing);
    const starting = this.#starting[index];
    if (starting) return starting;
    const promise = this.#spawn(index).finally(() => {
      this.#starting[index] = undefined;
    });
    this.#starting[index] = promise;
    return promise;
  }

  async #spawn(index: number): Promise<StdioProcess> {
    if (this.#closed) throw this.#closedError();
    if (this.#failures > 0) {
      const delay = Math.min(RESPAWN_MAX_MS, RESPAWN_BASE_MS * 2 ** (this.#failures - 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.#closed) throw this.#closedError();
    }
    const process = new StdioProcess(
      this.#options,
      (notification) => this.#listeners.emit(notification),
      (dead) => this.#onExit(dead),
    );
    this.#lastStart = performance.now();
    try {
      await process.start(this.#options.timeoutMs);
    } catch (error) {
      this.#failures++;
      throw error;
    }
    if (this.#closed) {
      await process.close();
      throw this.#closedError();
    }
    this.#slots[index] = process;
    this.#info ??= process.info;
    // A respawned process has none of the subscriptions its predecessor had.
    if (!this.#wanted.empty) process.subscribe(this.#wanted).catch(() => undefined);
    return process;
  }

  #onExit(dead: StdioProcess): void {
    const index = this.#slots.indexOf(dead);
    if (index >= 0) this.#slots[index] = undefined;
    if (this.#closed) return;
    this.#failures = performance.now() - this.#lastStart > HEALTHY_LIFETIME_MS ? 0 : this.#failures + 1;
  }

  #closedError(): RelayError {
    return new RelayError(RelayErrorCode.Closed, `upstream '${this.name}' is closed`, {
      upstream: this.name,
      notSent: true,
    });
  }
}

export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal, error: () => Error): Promise<T> {
  if (signal.aborted) return Promise.reject(error());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(error());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (reason: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(reason);
      },
    );
  });
}
