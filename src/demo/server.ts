/**
 * The bundled demo upstream: a small MCP server built on the official SDK v2 that exercises every
 * path a proxy must get right — pure and side-effecting tools, progress, cancellation, tool errors,
 * crashes, large payloads, list changes, resource subscriptions and 2026-07-28 cache hints. It is
 * both `mcp-relay demo`'s upstream and the fixture the test suites run against.
 *
 * One {@link DemoState} is shared by every server instance of one serving entry. That matters
 * because the 2026-07-28 HTTP entry (`createMcpHandler`) builds a fresh instance PER REQUEST: any
 * state that must outlive a request (the counter, the latency, whether the `extra` tool exists)
 * lives in the state object, never in an instance.
 *
 * Change events travel on `state.bus`, an SDK {@link ServerEventBus}:
 *
 * - the modern HTTP entry is created with `{ bus: state.bus }`, so its `subscriptions/listen`
 *   streams receive them directly;
 * - an instance serving a long-lived connection (stdio of either era, a legacy sessionful HTTP
 *   session) subscribes to the bus and re-emits each event on its own connection: the SDK's
 *   stdio entry routes a modern instance's notifications onto the open listen subscriptions, and a
 *   legacy instance sends them unsolicited (resource updates only to sessions that called
 *   `resources/subscribe`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  InMemoryServerEventBus,
  McpServer,
  ProtocolError,
  ProtocolErrorCode,
  ResourceTemplate,
} from '@modelcontextprotocol/server';
import type {
  CacheHint,
  CallToolResult,
  JSONRPCRequest,
  ListPromptsResult,
  ListResourcesResult,
  ListResourceTemplatesResult,
  ListToolsResult,
  McpRequestContext,
  RegisteredTool,
  Result,
  ServerContext,
  ServerEvent,
  ServerEventBus,
} from '@modelcontextprotocol/server';
import * as z from 'zod';

import { RelayError, RelayErrorCode } from '../errors/index.js';

/** The URI of the static, publicly cacheable readme resource. */
export const DEMO_README_URI = 'demo://static/readme';
/** The URI template of the per-item JSON resources. */
export const DEMO_ITEM_TEMPLATE = 'demo://items/{id}';
/** The URI of the subscribable counter resource; never cacheable. */
export const DEMO_COUNTER_URI = 'demo://counter/value';
/** The text of {@link DEMO_README_URI}. */
export const DEMO_README_TEXT =
  'mcp-relay demo server.\nTools: echo, add, counter, counter_value, slow, fail, crash, big, set_latency, toggle_extra_tool.\n';

/**
 * The 2026-07-28 cache hint the demo puts on results that are safe to share: the four list results
 * and the readme. 60 s, `public` (any cache may serve it to any caller).
 */
export const DEMO_PUBLIC_CACHE_HINT = { ttlMs: 60_000, cacheScope: 'public' } as const satisfies CacheHint;
/** The hint on the counter resource: immediately stale and private, i.e. never cache it. */
export const DEMO_UNCACHEABLE_HINT = { ttlMs: 0, cacheScope: 'private' } as const satisfies CacheHint;

const DemoOptionsSchema = z.object({
  latencyMs: z.number().int().nonnegative().default(0),
  name: z.string().min(1).default('mcp-relay-demo'),
  pageSize: z.number().int().positive().optional(),
});

/** Options of {@link createDemoState}. */
export interface DemoOptions {
  /**
   * Delay in milliseconds added before every tool call, resource read and prompt get answers
   * (`set_latency` itself excepted, so a slow server can always be made fast). Mutable at runtime
   * through `state.latencyMs` or the `set_latency` tool. Default `0`.
   */
  latencyMs?: number;
  /** The server's `serverInfo.name`. Default `'mcp-relay-demo'`. */
  name?: string;
  /**
   * Page size of the four list results (`tools/list`, `prompts/list`, `resources/list`,
   * `resources/templates/list`), with an opaque `nextCursor`. Default: unpaginated, one page.
   */
  pageSize?: number;
}

/** What the demo reports on `state.events`, for tests that wait on an event instead of sleeping. */
export interface DemoEventMap {
  /** A tool handler started (after input validation, before the added latency). */
  call: [name: string];
  /** A tool handler saw its request's abort signal and stopped early. */
  cancelled: [name: string];
}

/** State shared by every server instance of one serving entry. See the module comment. */
export interface DemoState {
  readonly name: string;
  readonly version: string;
  readonly pageSize: number | undefined;
  /** Added latency in ms; see {@link DemoOptions.latencyMs}. */
  latencyMs: number;
  /** The `counter` tool's value. */
  counter: number;
  /** Whether the `extra` tool is currently listed (flipped by `toggle_extra_tool`). */
  extraToolEnabled: boolean;
  /** Change events (`tools_list_changed`, `resource_updated`); pass it to `createMcpHandler`. */
  readonly bus: ServerEventBus;
  /** Tool calls started, by tool name: proves whether a proxy answered from cache. */
  readonly calls: Map<string, number>;
  readonly events: EventEmitter<DemoEventMap>;
}

export function createDemoState(options: DemoOptions = {}): DemoState {
  const parsed = DemoOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `invalid demo server options: ${z.prettifyError(parsed.error)}`,
      {
        cause: parsed.error,
      },
    );
  }
  return {
    name: parsed.data.name,
    version: '1.0.0',
    pageSize: parsed.data.pageSize,
    latencyMs: parsed.data.latencyMs,
    counter: 0,
    extraToolEnabled: false,
    bus: new InMemoryServerEventBus(),
    calls: new Map(),
    events: new EventEmitter<DemoEventMap>(),
  };
}

/**
 * The HTTP exchange a handler runs in, set by the HTTP serving wrapper (`serveDemoHttp`) through
 * {@link demoHttpRequestScope}. `crash {mode: 'drop'}` needs the raw socket, which neither the
 * SDK's handler context nor its per-request factory context exposes (they carry a web `Request`).
 * AsyncLocalStorage follows the request from the wrapper into the tool handler through the SDK's
 * promise chain, for both the modern per-request entry and legacy sessions.
 */
export interface DemoHttpRequestScope {
  /** Destroys the socket of the HTTP request being served, without answering it. */
  drop(): void;
}
export const demoHttpRequestScope = new AsyncLocalStorage<DemoHttpRequestScope>();

/**
 * Construction context of {@link createDemoServer}: the SDK's factory context, plus whether the
 * instance serves a long-lived connection.
 */
export interface DemoServerContext extends Partial<McpRequestContext> {
  /**
   * `true` when the instance serves a long-lived connection (stdio, a legacy HTTP session) and so
   * must push change notifications on it itself; `false` for the per-request instances of
   * `createMcpHandler`, whose notifications travel on the bus. Default: `true` unless
   * `requestInfo` is set (an HTTP request).
   */
  longLived?: boolean;
}

type RawRequestHandler = (request: JSONRPCRequest, ctx: ServerContext) => Promise<Result>;

/** Builds one server instance over `state`. `ctx.era` defaults to `'legacy'`. */
export function createDemoServer(state: DemoState, ctx: DemoServerContext = {}): McpServer {
  const era = ctx.era ?? 'legacy';
  const longLived = ctx.longLived ?? ctx.requestInfo === undefined;
  const server = new McpServer(
    { name: state.name, version: state.version },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
      },
      // The SDK stamps `ttlMs: 0, cacheScope: 'private'` on every cacheable 2026-07-28 result by
      // default; these per-operation hints are what a caching proxy has to honour. Hints never
      // appear on 2025-era responses.
      cacheHints: {
        'tools/list': DEMO_PUBLIC_CACHE_HINT,
        'prompts/list': DEMO_PUBLIC_CACHE_HINT,
        'resources/list': DEMO_PUBLIC_CACHE_HINT,
        'resources/templates/list': DEMO_PUBLIC_CACHE_HINT,
      },
    },
  );

  registerTools(server, state);
  let extraTool = state.extraToolEnabled ? registerExtraTool(server, state) : undefined;
  registerResources(server, state);
  registerPrompts(server, state);
  if (state.pageSize !== undefined) paginateLists(server, state.pageSize);

  // 2025-era subscriptions are per connection; the 2026-07-28 era replaced `resources/subscribe`
  // with the entry-served `subscriptions/listen`, so a modern instance never sees these requests.
  const subscribed = new Set<string>();
  if (era === 'legacy') {
    server.server.setRequestHandler('resources/subscribe', (request) => {
      subscribed.add(request.params.uri);
      return {};
    });
    server.server.setRequestHandler('resources/unsubscribe', (request) => {
      subscribed.delete(request.params.uri);
      return {};
    });
  }

  if (longLived) {
    let connectedOnce = false;
    const onEvent = (event: ServerEvent): void => {
      const connected = server.isConnected();
      connectedOnce ||= connected;
      if (connectedOnce && !connected) {
        unsubscribe();
        return;
      }
      if (event.kind === 'tools_list_changed') {
        // registerTool / remove() send `notifications/tools/list_changed` themselves when connected.
        if (state.extraToolEnabled && extraTool === undefined) extraTool = registerExtraTool(server, state);
        else if (!state.extraToolEnabled && extraTool !== undefined) {
          extraTool.remove();
          extraTool = undefined;
        }
      } else if (event.kind === 'resource_updated' && connected) {
        // On a modern stdio connection the SDK entry filters and stamps this per listen
        // subscription; on a legacy one only subscribers get it.
        if (era === 'modern' || subscribed.has(event.uri)) {
          server.server.sendResourceUpdated({ uri: event.uri }).catch(() => undefined);
        }
      }
    };
    const unsubscribe = state.bus.subscribe(onEvent);
    server.server.onclose = unsubscribe;
  }
  return server;
}

function text(value: string): CallToolResult {
  return { content: [{ type: 'text', text: value }] };
}

function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** Counts the call and applies the added latency; every tool but `set_latency` starts with it. */
async function begin(state: DemoState, name: string, ctx: ServerContext): Promise<void> {
  state.calls.set(name, (state.calls.get(name) ?? 0) + 1);
  state.events.emit('call', name);
  await addedLatency(state, ctx);
}

async function addedLatency(state: DemoState, ctx: ServerContext): Promise<void> {
  if (state.latencyMs > 0) await sleep(state.latencyMs, undefined, { signal: ctx.mcpReq.signal });
}

function registerTools(server: McpServer, state: DemoState): void {
  // Server-to-client requests, the 2025 push model: elicitation and sampling mid-call.
  server.registerTool(
    'ask',
    {
      description: 'Asks the user a question (elicitation) and returns the answer. 2025 connections only.',
      inputSchema: z.object({ question: z.string() }),
    },
    async ({ question }, ctx) => {
      await begin(state, 'ask', ctx);
      try {
        // relatedRequestId puts the question on this call's own stream, where the caller is listening.
        const answer = await ctx.mcpReq.elicitInput(
          {
            message: question,
            requestedSchema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] },
          },
          { relatedRequestId: ctx.mcpReq.id },
        );
        if (answer.action !== 'accept') return text(`user chose ${answer.action}`);
        return text(`answer: ${String(answer.content?.['answer'] ?? '')}`);
      } catch (error) {
        return toolError(`elicitation failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
  );

  server.registerTool(
    'sample',
    {
      description:
        "Asks the client's model to complete a prompt (sampling) and returns its text. 2025 connections only.",
      inputSchema: z.object({ prompt: z.string() }),
    },
    async ({ prompt }, ctx) => {
      await begin(state, 'sample', ctx);
      try {
        const result = await ctx.mcpReq.requestSampling(
          { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 },
          { relatedRequestId: ctx.mcpReq.id },
        );
        const content = Array.isArray(result.content) ? result.content[0] : result.content;
        return text(`model said: ${content?.type === 'text' ? content.text : JSON.stringify(content)}`);
      } catch (error) {
        return toolError(`sampling failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
  );

  server.registerTool(
    'echo',
    { description: 'Returns its text unchanged.', inputSchema: z.object({ text: z.string() }) },
    async ({ text: value }, ctx) => {
      await begin(state, 'echo', ctx);
      return text(value);
    },
  );

  server.registerTool(
    'add',
    {
      description: 'Adds two numbers.',
      inputSchema: z.object({ a: z.number(), b: z.number() }),
      outputSchema: z.object({ sum: z.number() }),
      annotations: { readOnlyHint: true, idempotentHint: true },
    },
    async ({ a, b }, ctx) => {
      await begin(state, 'add', ctx);
      const sum = a + b;
      return { content: [{ type: 'text', text: String(sum) }], structuredContent: { sum } };
    },
  );

  server.registerTool(
    'counter',
    {
      description: 'Side effect: increments the shared counter and returns the new value. Never cache or retry it.',
      inputSchema: z.object({ by: z.number().int().optional() }),
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
    },
    async ({ by }, ctx) => {
      await begin(state, 'counter', ctx);
      state.counter += by ?? 1;
      state.bus.publish({ kind: 'resource_updated', uri: DEMO_COUNTER_URI });
      return text(String(state.counter));
    },
  );

  server.registerTool(
    'counter_value',
    { description: 'Returns the shared counter without changing it.', annotations: { readOnlyHint: true } },
    async (ctx) => {
      await begin(state, 'counter_value', ctx);
      return text(String(state.counter));
    },
  );

  server.registerTool(
    'slow',
    {
      description:
        'Sleeps `ms` in total, sending `steps` progress notifications (default 1) when the caller asked for progress; stops early when cancelled.',
      inputSchema: z.object({
        ms: z.number().int().nonnegative(),
        steps: z.number().int().nonnegative().max(10_000).optional(),
      }),
      annotations: { readOnlyHint: true },
    },
    async ({ ms, steps = 1 }, ctx) => {
      const signal = ctx.mcpReq.signal;
      try {
        await begin(state, 'slow', ctx);
        const progressToken = ctx.mcpReq._meta?.progressToken;
        if (steps === 0) await sleep(ms, undefined, { signal });
        for (let step = 1; step <= steps; step++) {
          await sleep(Math.round((ms * step) / steps) - Math.round((ms * (step - 1)) / steps), undefined, { signal });
          if (progressToken !== undefined) {
            await ctx.mcpReq.notify({
              method: 'notifications/progress',
              params: { progressToken, progress: step, total: steps, message: `step ${step} of ${steps}` },
            });
          }
        }
      } catch (error) {
        if (!signal.aborted) throw error;
        state.events.emit('cancelled', 'slow');
        return toolError('cancelled');
      }
      return text(`slept ${ms} ms`);
    },
  );

  server.registerTool(
    'fail',
    {
      description: 'Returns a tool error (`isError: true`) with the message.',
      inputSchema: z.object({ message: z.string().optional() }),
    },
    async ({ message }, ctx) => {
      await begin(state, 'fail', ctx);
      return toolError(message ?? 'the fail tool failed, as asked');
    },
  );

  server.registerTool(
    'crash',
    {
      description:
        "'exit' (default) kills the server process mid-call; 'drop' (HTTP only) destroys the HTTP connection of this request without answering.",
      inputSchema: z.object({ mode: z.enum(['exit', 'drop']).optional() }),
    },
    async ({ mode = 'exit' }, ctx) => {
      await begin(state, 'crash', ctx);
      if (mode === 'exit') {
        process.stderr.write('mcp-relay demo: crash tool called, exiting with code 1\n');
        process.exit(1);
      }
      const scope = demoHttpRequestScope.getStore();
      if (scope === undefined) return toolError("crash mode 'drop' needs the HTTP transport");
      scope.drop();
      // Nothing can be written any more; the answer below is discarded by the dead socket.
      return toolError('dropped');
    },
  );

  server.registerTool(
    'big',
    {
      description: 'Returns a text content of exactly kb * 1024 characters.',
      inputSchema: z.object({ kb: z.number().int().nonnegative().max(65_536) }),
      annotations: { readOnlyHint: true },
    },
    async ({ kb }, ctx) => {
      await begin(state, 'big', ctx);
      return text('x'.repeat(kb * 1024));
    },
  );

  server.registerTool(
    'set_latency',
    {
      description: "Sets the server's added latency in ms. Not delayed itself.",
      inputSchema: z.object({ ms: z.number().int().nonnegative() }),
    },
    ({ ms }) => {
      state.calls.set('set_latency', (state.calls.get('set_latency') ?? 0) + 1);
      state.events.emit('call', 'set_latency');
      state.latencyMs = ms;
      return text(`latency ${ms} ms`);
    },
  );

  server.registerTool(
    'toggle_extra_tool',
    { description: "Adds or removes the tool 'extra', which emits notifications/tools/list_changed." },
    async (ctx) => {
      await begin(state, 'toggle_extra_tool', ctx);
      state.extraToolEnabled = !state.extraToolEnabled;
      state.bus.publish({ kind: 'tools_list_changed' });
      return text(state.extraToolEnabled ? 'extra tool added' : 'extra tool removed');
    },
  );
}

function registerExtraTool(server: McpServer, state: DemoState): RegisteredTool {
  return server.registerTool(
    'extra',
    { description: 'Exists only between two toggle_extra_tool calls.', annotations: { readOnlyHint: true } },
    async (ctx) => {
      await begin(state, 'extra', ctx);
      return text('extra');
    },
  );
}

function registerResources(server: McpServer, state: DemoState): void {
  server.registerResource(
    'readme',
    DEMO_README_URI,
    { mimeType: 'text/plain', description: 'Static text; publicly cacheable.', cacheHint: DEMO_PUBLIC_CACHE_HINT },
    async (uri, ctx) => {
      await addedLatency(state, ctx);
      return { contents: [{ uri: uri.href, mimeType: 'text/plain', text: DEMO_README_TEXT }] };
    },
  );

  server.registerResource(
    'item',
    new ResourceTemplate(DEMO_ITEM_TEMPLATE, {
      list: () => ({
        resources: ['1', '2', '3'].map((id) => ({ uri: `demo://items/${id}`, name: `item ${id}` })),
      }),
    }),
    { mimeType: 'application/json', description: 'A JSON document for any id.' },
    async (uri, variables, ctx) => {
      await addedLatency(state, ctx);
      const id = String(variables['id']);
      return {
        contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, name: `item ${id}` }) }],
      };
    },
  );

  server.registerResource(
    'counter',
    DEMO_COUNTER_URI,
    {
      mimeType: 'text/plain',
      description: 'The current counter; subscribable, changes on every counter call; never cacheable.',
      cacheHint: DEMO_UNCACHEABLE_HINT,
    },
    async (uri, ctx) => {
      await addedLatency(state, ctx);
      return { contents: [{ uri: uri.href, mimeType: 'text/plain', text: String(state.counter) }] };
    },
  );
}

function registerPrompts(server: McpServer, state: DemoState): void {
  server.registerPrompt(
    'greet',
    { description: 'Asks for a greeting.', argsSchema: z.object({ name: z.string() }) },
    async ({ name }, ctx) => {
      await addedLatency(state, ctx);
      return {
        messages: [{ role: 'user', content: { type: 'text', text: `Please greet ${name} warmly.` } }],
      };
    },
  );

  server.registerPrompt(
    'summarize',
    {
      description: 'Asks for a summary of the text.',
      argsSchema: z.object({ text: z.string(), style: z.string().optional() }),
    },
    async ({ text: value, style }, ctx) => {
      await addedLatency(state, ctx);
      return {
        messages: [
          {
            role: 'user',
            content: {
              type: 'text',
              text: `Summarize the following text${style ? ` in a ${style} style` : ''}:\n\n${value}`,
            },
          },
        ],
      };
    },
  );
}

const LIST_ITEMS_KEY = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
} as const;
type ListMethod = keyof typeof LIST_ITEMS_KEY;

/**
 * McpServer answers the list methods in one page and has no pagination option. We wrap its own
 * handlers: ask them for the full list, then serve `pageSize` items per page behind an opaque
 * cursor. The SDK keeps the stored handler behind the protected `_getRequestHandler`, reached here
 * by a cast — the only non-public SDK surface this file touches.
 */
function paginateLists(server: McpServer, pageSize: number): void {
  const protocol = server.server as unknown as { _getRequestHandler(method: string): RawRequestHandler | undefined };
  for (const method of Object.keys(LIST_ITEMS_KEY) as ListMethod[]) {
    const full = protocol._getRequestHandler(method);
    if (full === undefined) continue;
    const key = LIST_ITEMS_KEY[method];
    const page = async (cursor: string | undefined, ctx: ServerContext): Promise<Result> => {
      const offset = cursor === undefined ? 0 : decodeCursor(cursor);
      const result = await full({ jsonrpc: '2.0', id: ctx.mcpReq.id, method, params: {} }, ctx);
      const items = (result as Record<string, unknown>)[key];
      if (!Array.isArray(items)) return result;
      const next = offset + pageSize;
      return {
        [key]: items.slice(offset, next),
        ...(next < items.length ? { nextCursor: encodeCursor(next) } : {}),
      };
    };
    // One call per method keeps each handler's request/result types exact.
    switch (method) {
      case 'tools/list':
        server.server.setRequestHandler(
          method,
          async (request, ctx) => page(request.params?.cursor, ctx) as Promise<ListToolsResult>,
        );
        break;
      case 'prompts/list':
        server.server.setRequestHandler(
          method,
          async (request, ctx) => page(request.params?.cursor, ctx) as Promise<ListPromptsResult>,
        );
        break;
      case 'resources/list':
        server.server.setRequestHandler(
          method,
          async (request, ctx) => page(request.params?.cursor, ctx) as Promise<ListResourcesResult>,
        );
        break;
      case 'resources/templates/list':
        server.server.setRequestHandler(
          method,
          async (request, ctx) => page(request.params?.cursor, ctx) as Promise<ListResourceTemplatesResult>,
        );
        break;
    }
  }
}

function encodeCursor(offset: number): string {
  return Buffer.from(JSON.stringify({ offset }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): number {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && 'offset' in value) {
      const { offset } = value;
      if (typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0) return offset;
    }
  } catch {
    // fall through to the error below
  }
  throw new ProtocolError(ProtocolErrorCode.InvalidParams, `invalid cursor '${cursor}'`);
}
