import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Client, JSONRPCMessage, JSONRPCNotification, RequestId } from '@modelcontextprotocol/client';
import { childProcessEnv } from '../config/index.js';
import { RelayError, RelayErrorCode } from '../errors/index.js';
import { PendingCall } from './call.js';
import {
  isJsonRpcErrorObject,
  modernEnvelope,
  outgoingParams,
  progressFromParams,
  upstreamRpcError,
} from './jsonrpc.js';
import { BridgeTransport, createHandshakeClient, describeClient } from './negotiate.js';
import { ConnectionSubscriber, type WantedChanges } from './subscriptions.js';
import type { CallOptions, UpstreamInfo, UpstreamOptions } from './types.js';
import { DEFAULT_CLIENT_INFO } from './jsonrpc.js';

type StdioTransport = Extract<UpstreamOptions['transport'], { kind: 'stdio' }>;

/** A request in flight on the pipe: one of ours, or one the SDK client sent (negotiation, subscriptions). */
type Outstanding = { call: PendingCall; token: number | undefined } | { sdkId: RequestId };

const NEWLINE = 0x0a;
const STDERR_TAIL_LINES = 20;
const KILL_GRACE_MS = 2000;

/**
 * One child process speaking MCP over newline-delimited JSON on its stdio. Many callers share it:
 * every request gets an id from this process's own counter, so responses can never cross between
 * callers even when two callers used the same id, and progress tokens are remapped the same way.
 */
export class StdioProcess {
  readonly #options: UpstreamOptions;
  readonly #transport: StdioTransport;
  readonly #onNotification: (notification: JSONRPCNotification) => void;
  readonly #onExit: (process: StdioProcess) => void;
  #child: ChildProcessWithoutNullStreams | undefined;
  #bridge: BridgeTransport | undefined;
  #client: Client | undefined;
  #subscriber: ConnectionSubscriber | undefined;
  readonly #outstanding = new Map<number, Outstanding>();
  readonly #byToken = new Map<number, PendingCall>();
  #nextId = 1;
  #corked = false;
  #envelope: Record<string, unknown> | undefined;
  #parts: Buffer[] = [];
  #partsBytes = 0;
  #discarding = false;
  readonly #stderrTail: string[] = [];
  #exitReason: string | undefined;
  #exited: Promise<void> | undefined;
  info: UpstreamInfo | undefined;
  /** Calls in flight on this process, for least-outstanding spreading. */
  inFlight = 0;
  /** Lines on stdout that were not JSON-RPC (a misbehaving server). */
  garbageLines = 0;

  constructor(
    options: UpstreamOptions,
    onNotification: (notification: JSONRPCNotification) => void,
    onExit: (process: StdioProcess) => void,
  ) {
    if (options.transport.kind !== 'stdio') throw new TypeError('StdioProcess needs a stdio transport');
    this.#options = options;
    this.#transport = options.transport;
    this.#onNotification = onNotification;
    this.#onExit = onExit;
  }

  get alive(): boolean {
    return this.#child !== undefined && this.#exitReason === undefined;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Spawns the process and negotiates the revision. Rejects with `RELAY_UPSTREAM_UNAVAILABLE` if it cannot start. */
  async start(timeoutMs: number): Promise<UpstreamInfo> {
    const { command, args, env, cwd } = this.#transport;
    const child = spawn(command, [...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: childProcessEnv(env),
      cwd,
      // Not detached: a child in a session of its own is woken later by the kernel's per-session
      // scheduling groups on a loaded machine (P99 ×10 measured in bench/). close() finds and ends
      // the whole tree (npx → node → server) through /proc instead of a process group.
      detached: false,
      windowsHide: true,
    });
    this.#child = child;
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => {
        reject(
          new RelayError(
            RelayErrorCode.UpstreamUnavailable,
            `upstream '${this.#options.name}': could not start \`${command}\`: ${error.message}`,
            { upstream: this.#options.name, cause: error, notSent: true },
          ),
        );
      });
    });
    this.#exited = new Promise<void>((resolve) => {
      child.once('close', (code, signal) => {
        this.#handleExit(`exited with ${signal ? `signal ${signal}` : `code ${code}`}`);
        resolve();
      });
    });
    child.stdout.on('data', (chunk: Buffer) => this.#onData(chunk));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => this.#onStderr(text));
    // EPIPE when the child dies between our check and the write; the close handler reports it.
    child.stdin.on('error', () => {});
    await spawned;

    const bridge = new BridgeTransport((message) => this.#writeFromSdk(message));
    this.#bridge = bridge;
    const client = createHandshakeClient(
      this.#options.clientInfo ?? DEFAULT_CLIENT_INFO,
      this.#options.protocol,
      Math.min(timeoutMs, 5000),
    );
    client.fallbackNotificationHandler = () => Promise.resolve();
    this.#client = client;
    try {
      await client.connect(bridge, { timeout: timeoutMs });
    } catch (error) {
      const reason = this.#exitReason;
      this.kill();
      throw new RelayError(
        RelayErrorCode.UpstreamUnavailable,
        `upstream '${this.#options.name}': MCP handshake with \`${command}\` failed` +
          (reason ? ` (process ${reason}${this.#stderrSuffix()})` : `: ${(error as Error).message}`),
        { upstream: this.#options.name, cause: error, notSent: true },
      );
    }
    this.info = describeClient(client);
    this.#subscriber = new ConnectionSubscriber(client, this.info.era === 'modern');
    this.#envelope =
      this.info.era === 'modern' ? modernEnvelope(this.#options.clientInfo ?? DEFAULT_CLIENT_INFO) : undefined;
    return this.info;
  }

  call(
    method: string,
    params: Record<string, unknown> | undefined,
    options: CallOptions | undefined,
  ): Promise<unknown> {
    const child = this.#child;
    if (!child || this.#exitReason !== undefined) {
      return Promise.reject(this.#unavailable(true));
    }
    const id = this.#nextId++;
    const timeoutMs = options?.timeoutMs ?? this.#options.timeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const token = options?.onProgress !== undefined ? id : undefined;
      // Serialized before the call is armed and counted: params nested past the stack limit throw
      // here (the promise rejects) and leave no timer, outstanding entry or in-flight count behind.
      const line =
        JSON.stringify({
          jsonrpc: '2.0',
          id,
          method,
          params: outgoingParams(params, this.#envelope, token, options?.meta),
        }) + '\n';
      const call = new PendingCall(this.#options.name, method, options, timeoutMs, resolve, reject, (reason) =>
        this.#cancel(id, token, reason),
      );
      this.#outstanding.set(id, { call, token });
      if (token !== undefined) this.#byToken.set(token, call);
      this.inFlight++;
      this.#write(line);
    });
  }

  /** Sends a notification that is not tied to a call (e.g. `notifications/roots/list_changed`). */
  notify(method: string, params?: Record<string, unknown>): void {
    if (!this.alive) return;
    this.#write(JSON.stringify({ jsonrpc: '2.0', method, params }) + '\n');
  }

  /** Keeps this process subscribed to `wanted` (see `Upstream.subscribe`). */
  subscribe(wanted: WantedChanges): Promise<void> {
    if (this.#subscriber === undefined || !this.alive) return Promise.reject(this.#unavailable(true));
    return this.#subscriber.apply(wanted);
  }

  /** The SDK client for the rare paths (subscriptions/listen, resource subscribe, server requests). */
  get client(): Client | undefined {
    return this.#client;
  }

  /** Ends the process group: SIGTERM, then SIGKILL after a grace period. Resolves once it has exited. */
  async close(): Promise<void> {
    this.kill();
    await this.#exited;
  }

  kill(): void {
    void this.#subscriber?.close();
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.#exitReason ??= 'was closed by the relay';
    const tree = processTree(child.pid);
    child.stdin.end();
    signalAll(child, tree, 'SIGTERM');
    const force = setTimeout(() => signalAll(child, tree, 'SIGKILL'), KILL_GRACE_MS);
    force.unref();
    child.once('close', () => clearTimeout(force));
  }

  /**
   * Writes one line. Lines written in one turn of the event loop (every request a gateway read in
   * one poll, or many callers resumed by one batch of answers) leave in one write: the stream is
   * corked at the first and uncorked in the check phase right after the poll, so a lone call waits
   * for no timer, only for the end of the I/O callbacks already running.
   */
  #write(line: string): void {
    const stdin = this.#child?.stdin;
    if (!stdin || this.#exitReason !== undefined) return;
    if (!this.#corked) {
      this.#corked = true;
      stdin.cork();
      setImmediate(this.#uncork);
    }
    stdin.write(line);
  }

  readonly #uncork = (): void => {
    this.#corked = false;
    this.#child?.stdin.uncork();
  };

  #writeFromSdk(message: JSONRPCMessage): void {
    const child = this.#child;
    if (!child || this.#exitReason !== undefined) return;
    if ('method' in message && 'id' in message && typeof message.id === 'string') {
      // A string id (the SDK's `listen:N`) cannot collide with our numeric ids, and the server
      // echoes it in the stream's notifications (`subscriptionId`): it must reach the wire as is.
      this.#write(JSON.stringify(message) + '\n');
      return;
    }
    if ('method' in message && 'id' in message) {
      // The SDK's own requests get ids from our counter too, so they cannot collide with calls.
      const id = this.#nextId++;
      this.#outstanding.set(id, { sdkId: message.id });
      this.#write(JSON.stringify({ ...message, id }) + '\n');
      return;
    }
    this.#write(JSON.stringify(message) + '\n');
  }

  #onData(chunk: Buffer): void {
    let start = 0;
    let newline = chunk.indexOf(NEWLINE, start);
    while (newline !== -1) {
      if (this.#discarding) {
        this.#discardEnd(chunk.subarray(Math.max(start, newline - 64), newline));
      } else if (this.#partsBytes === 0) {
        this.#onLine(chunk.toString('utf8', start, newline));
      } else {
        this.#parts.push(chunk.subarray(start, newline));
        const line = Buffer.concat(this.#parts).toString('utf8');
        this.#parts = [];
        this.#partsBytes = 0;
        this.#onLine(line);
      }
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length && !this.#discarding) {
      this.#parts.push(chunk.subarray(start));
      this.#partsBytes += chunk.length - start;
      if (this.#partsBytes > this.#options.maxResponseBytes) {
        // Too large to hold: drop it as it streams and fail its call by the id at its end.
        this.#discarding = true;
        this.#parts = [];
        this.#partsBytes = 0;
      }
    }
  }

  /** The end of an oversized message: SDK servers write the id last, so it can still be matched. */
  #discardEnd(tail: Buffer): void {
    this.#discarding = false;
    const match = /"id"\s*:\s*(\d+)\s*}\s*$/.exec(tail.toString('utf8'));
    const entry = match ? this.#outstanding.get(Number(match[1])) : undefined;
    if (entry && 'call' in entry) {
      this.#finish(Number(match![1]), entry);
      entry.call.reject(
        new RelayError(
          RelayErrorCode.ResponseTooLarge,
          `upstream '${this.#options.name}' answered ${entry.call.method} with more than ${this.#options.maxResponseBytes} bytes; ` +
            'raise `max_response_bytes` if this is expected',
          { upstream: this.#options.name },
        ),
      );
    }
  }

  #onLine(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      if (line.trim() !== '') this.garbageLines++;
      return;
    }
    if (typeof message !== 'object' || message === null) {
      this.garbageLines++;
      return;
    }
    const method = message['method'];
    if (typeof method !== 'string') {
      this.#onResponse(message);
    } else if (message['id'] !== undefined) {
      // A request from the server (ping, roots/list, sampling, elicitation): the SDK client answers.
      this.#bridge?.deliver(message as JSONRPCMessage);
    } else {
      this.#onServerNotification(method, message as unknown as JSONRPCNotification);
    }
  }

  #onResponse(message: Record<string, unknown>): void {
    const id = message['id'];
    if (typeof id === 'string') {
      // Only the SDK client sends string ids (see #writeFromSdk).
      this.#bridge?.deliver(message as JSONRPCMessage);
      return;
    }
    const entry = typeof id === 'number' ? this.#outstanding.get(id) : undefined;
    if (entry === undefined) return; // a late answer to a call that timed out or was cancelled
    this.#finish(id as number, entry);
    if ('sdkId' in entry) {
      this.#bridge?.deliver({ ...message, id: entry.sdkId } as JSONRPCMessage);
      return;
    }
    const error = message['error'];
    if (error !== undefined) {
      entry.call.reject(
        isJsonRpcErrorObject(error)
          ? upstreamRpcError(this.#options.name, entry.call.method, error)
          : new RelayError(RelayErrorCode.UpstreamProtocol, `upstream '${this.#options.name}' sent a malformed error`, {
              upstream: this.#options.name,
            }),
      );
    } else {
      entry.call.resolve(message['result']);
    }
  }

  #onServerNotification(method: string, notification: JSONRPCNotification): void {
    if (method === 'notifications/progress') {
      const params = notification.params ?? {};
      const token = params['progressToken'];
      const call = typeof token === 'number' ? this.#byToken.get(token) : undefined;
      if (call) call.progress(progressFromParams(params));
      return;
    }
    this.#bridge?.deliver(notification);
    this.#onNotification(notification);
  }

  #finish(id: number, entry: Outstanding): void {
    this.#outstanding.delete(id);
    if ('call' in entry) {
      this.inFlight--;
      if (entry.token !== undefined) this.#byToken.delete(entry.token);
    }
  }

  #cancel(id: number, token: number | undefined, reason: RelayError): void {
    const entry = this.#outstanding.get(id);
    if (entry) this.#finish(id, entry);
    else if (token !== undefined) this.#byToken.delete(token);
    this.notify('notifications/cancelled', { requestId: id, reason: reason.message });
  }

  #onStderr(text: string): void {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      this.#stderrTail.push(line.length > 500 ? line.slice(0, 500) + '…' : line);
      if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
    }
  }

  #stderrSuffix(): string {
    const tail = this.#stderrTail.slice(-3).join(' | ');
    return tail ? `; stderr: ${tail}` : '';
  }

  #unavailable(notSent: boolean): RelayError {
    return new RelayError(
      RelayErrorCode.UpstreamUnavailable,
      `upstream '${this.#options.name}' (\`${this.#transport.command}\`) ${this.#exitReason ?? 'is not running'}${this.#stderrSuffix()}`,
      { upstream: this.#options.name, notSent },
    );
  }

  #handleExit(reason: string): void {
    this.#exitReason ??= reason;
    const entries = [...this.#outstanding.entries()];
    this.#outstanding.clear();
    this.#byToken.clear();
    for (const [, entry] of entries) {
      if ('call' in entry) {
        this.inFlight--;
        // It may have run before the process died: not safe to retry blindly.
        entry.call.reject(this.#unavailable(false));
      }
    }
    void this.#bridge?.close();
    this.#onExit(this);
  }
}

/** The child and every process below it (Linux: from /proc), children first so none is orphaned unseen. */
function processTree(root: number | undefined): number[] {
  if (root === undefined) return [];
  if (process.platform !== 'linux') return [root];
  const children = new Map<number, number[]>();
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        // The command name may hold spaces and parentheses: the ppid follows the last ')'.
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        const list = children.get(ppid);
        if (list) list.push(Number(entry));
        else children.set(ppid, [Number(entry)]);
      } catch {
        // the process ended while we looked
      }
    }
  } catch {
    return [root];
  }
  const tree: number[] = [];
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) visit(child);
    tree.push(pid);
  };
  visit(root);
  return tree;
}

function signalAll(child: ChildProcessWithoutNullStreams, tree: readonly number[], signal: NodeJS.Signals): void {
  if (tree.length === 0) {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
    return;
  }
  for (const pid of tree) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
