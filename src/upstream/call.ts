import { RelayError, RelayErrorCode } from '../errors/index.js';
import type { CallOptions, ProgressUpdate } from './types.js';

/**
 * One call in flight: its deadline, its caller's abort signal and its progress callback. Both
 * transports settle calls through this so that timeouts, aborts and progress behave the same.
 *
 * The deadline restarts on every progress notification (`timer.refresh()`, no new timer), so a
 * long job that reports progress is not cut off, and a silent one is. `maxTotalMs` caps those
 * restarts: the deadline never moves past `start + maxTotalMs`.
 */
export class PendingCall {
  readonly #resolve: (value: unknown) => void;
  readonly #reject: (error: unknown) => void;
  readonly #onProgress: ((update: ProgressUpdate) => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #upstream: string;
  readonly #timeoutMs: number;
  /** `performance.now()` past which no progress may extend the deadline; Infinity when uncapped. */
  readonly #capAt: number;
  readonly #maxTotalMs: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #onAbort: (() => void) | undefined;
  settled = false;
  readonly method: string;
  /** Answers the server's own requests made while this call runs; see {@link CallOptions.onServerRequest}. */
  readonly onServerRequest: CallOptions['onServerRequest'];
  /** Receives the log messages of this call's stream; see {@link CallOptions.onLog}. */
  readonly onLog: CallOptions['onLog'];
  /** Called once when the call ends early (deadline or abort), to tell the upstream. */
  readonly #onCancel: (reason: RelayError) => void;

  constructor(
    upstream: string,
    method: string,
    options: CallOptions | undefined,
    timeoutMs: number,
    resolve: (value: unknown) => void,
    reject: (error: unknown) => void,
    onCancel: (reason: RelayError) => void,
  ) {
    this.method = method;
    this.onServerRequest = options?.onServerRequest;
    this.onLog = options?.onLog;
    this.#upstream = upstream;
    this.#timeoutMs = timeoutMs;
    this.#onCancel = onCancel;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#onProgress = options?.onProgress;
    this.#signal = options?.signal;
    const maxTotalMs = options?.maxTotalMs;
    this.#maxTotalMs = maxTotalMs;
    this.#capAt = maxTotalMs === undefined ? Infinity : performance.now() + maxTotalMs;
    this.#timer =
      maxTotalMs !== undefined && maxTotalMs < timeoutMs
        ? setTimeout(this.#onTotalTimeout, Math.max(0, maxTotalMs))
        : setTimeout(this.#onTimeout, timeoutMs);
    if (this.#signal) {
      this.#onAbort = () => {
        this.cancel(
          new RelayError(RelayErrorCode.Aborted, `call ${method} to upstream '${upstream}' was aborted by the caller`, {
            upstream,
            cause: this.#signal?.reason,
          }),
        );
      };
      this.#signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  readonly #onTimeout = (): void => {
    this.cancel(
      new RelayError(
        RelayErrorCode.Timeout,
        `upstream '${this.#upstream}' did not answer ${this.method} within ${this.#timeoutMs} ms; raise \`timeout\` or check the server`,
        { upstream: this.#upstream },
      ),
    );
  };

  readonly #onTotalTimeout = (): void => {
    this.cancel(
      new RelayError(
        RelayErrorCode.Timeout,
        `upstream '${this.#upstream}' did not finish ${this.method} within its total limit of ` +
          `${Math.round(this.#maxTotalMs ?? 0)} ms (progress resets the ${this.#timeoutMs} ms deadline only up to ` +
          '`max_total_timeout`); raise `max_total_timeout` or check the server',
        { upstream: this.#upstream },
      ),
    );
  };

  get wantsProgress(): boolean {
    return this.#onProgress !== undefined;
  }

  progress(update: ProgressUpdate): void {
    if (this.settled) return;
    const left = this.#capAt - performance.now();
    if (left >= this.#timeoutMs) {
      this.#timer?.refresh();
    } else if (this.#timer !== undefined) {
      // Past this point a full deadline would overrun the total cap: the cap becomes the deadline.
      clearTimeout(this.#timer);
      this.#timer = setTimeout(this.#onTotalTimeout, Math.max(0, left));
    }
    try {
      this.#onProgress?.(update);
    } catch {
      // A throwing progress callback is the caller's bug; it must not break the call.
    }
  }

  resolve(value: unknown): void {
    if (this.#settle()) this.#resolve(value);
  }

  reject(error: unknown): void {
    if (this.#settle()) this.#reject(error);
  }

  cancel(reason: RelayError): void {
    if (!this.#settle()) return;
    try {
      this.#onCancel(reason);
    } finally {
      this.#reject(reason);
    }
  }

  #settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#signal && this.#onAbort) this.#signal.removeEventListener('abort', this.#onAbort);
    return true;
  }
}

export function abortedBeforeStart(upstream: string, method: string, signal: AbortSignal): RelayError {
  return new RelayError(
    RelayErrorCode.Aborted,
    `call ${method} to upstream '${upstream}' was aborted before it started`,
    {
      upstream,
      notSent: true,
      cause: signal.reason,
    },
  );
}
