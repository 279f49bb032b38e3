/**
 * What may be cached, and for how long. Correct first: a tool is answered from cache only when the
 * operator said it is safe (`cache.tools`) or a trusted upstream annotated it `readOnlyHint: true`;
 * errors and incomplete results never are; and the 2026-07-28 server hints (`ttlMs`, `cacheScope`)
 * are read exactly as the SDK client reads them, so the relay and a plain SDK client agree.
 */
import { MAX_CACHE_TTL_MS } from '@modelcontextprotocol/client';

import type { CacheCategory, StoreDecision } from './types.js';

/** The category of each method the relay caches; anything else is never cached. */
export const CACHEABLE_METHODS: Readonly<Record<string, CacheCategory>> = Object.freeze({
  'tools/call': 'tools',
  'resources/read': 'resources',
  'prompts/get': 'prompts',
  'tools/list': 'metadata',
  'resources/list': 'metadata',
  'resources/templates/list': 'metadata',
  'prompts/list': 'metadata',
});

/**
 * The methods whose 2026-07-28 results carry the cache fields (the SDK's `CACHEABLE_RESULT_METHODS`,
 * `server/discover` aside, which the relay does not cache). On them the fields are required, and
 * an absent `ttlMs` means "immediately stale", as the SDK client's default `defaultCacheTtlMs: 0`.
 */
const HINTED_METHODS: ReadonlySet<string> = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/** The seed's TTLs: tools 5 min, resources 5 min, prompts 10 min, metadata 15 min. */
export const DEFAULT_CATEGORY_TTL_MS: Readonly<Record<CacheCategory, number>> = Object.freeze({
  tools: 300_000,
  resources: 300_000,
  prompts: 600_000,
  metadata: 900_000,
});

/** One entry of `cache.tools`: a name or a glob (`*` any run of characters, `?` one), with an optional TTL. */
export interface ToolCacheRule {
  /** A tool name, or a glob such as `get_*`. */
  name: string;
  /** TTL of this tool's results, in ms. Default: the `tools` category's. */
  ttlMs?: number | undefined;
}

export interface CachePolicyOptions {
  /** Fresh lifetime per category, in ms, before any server hint caps it. */
  ttlMs: Readonly<Record<CacheCategory, number>>;
  /** Served stale while revalidating for this much longer, in ms; 0 turns stale-while-revalidate off. */
  staleTtlMs: number;
  /** `'*'` caches every tool (the seed's behaviour); a list caches the tools it names. */
  tools: '*' | readonly ToolCacheRule[];
  /** Cache tools the upstream annotates `readOnlyHint: true`. Only for upstreams you trust. */
  trustAnnotations: boolean;
}

/** A tool's verdict: its TTL in ms, `null` for never cached, `undefined` while its annotations are unknown. */
export type ToolVerdict = number | null | undefined;

interface CompiledRule {
  test: (name: string) => boolean;
  ttlMs: number | undefined;
}

export class CachePolicy {
  readonly options: CachePolicyOptions;
  readonly #rules: readonly CompiledRule[];
  readonly #verdicts = new Map<string, number | null>();
  /** Tool name → `readOnlyHint === true`, from the last `tools/list` seen; undefined until one is. */
  #readOnly: Map<string, boolean> | undefined;

  constructor(options: CachePolicyOptions) {
    this.options = options;
    this.#rules = options.tools === '*' ? [] : options.tools.map(compileRule);
  }

  /** Whether `trust_annotations` needs the tool list before it can judge `name`. */
  get needsAnnotations(): boolean {
    return this.options.trustAnnotations && this.#readOnly === undefined;
  }

  /** The TTL (ms) for `name`'s results, `null` when it must not be cached, `undefined` when annotations are still unknown. */
  toolVerdict(name: string): ToolVerdict {
    const known = this.#verdicts.get(name);
    if (known !== undefined) return known;
    const base = this.options.ttlMs.tools;
    if (this.options.tools === '*') return this.#remember(name, base);
    for (const rule of this.#rules) if (rule.test(name)) return this.#remember(name, rule.ttlMs ?? base);
    if (!this.options.trustAnnotations) return this.#remember(name, null);
    if (this.#readOnly === undefined) return undefined;
    return this.#remember(name, this.#readOnly.get(name) === true ? base : null);
  }

  /** Records the tools' annotations from a complete tool list (all pages). */
  learnTools(
    tools: readonly { name: string; annotations?: { readOnlyHint?: boolean | undefined } | undefined }[],
  ): void {
    this.#readOnly = new Map(tools.map((tool) => [tool.name, tool.annotations?.readOnlyHint === true]));
    this.#verdicts.clear();
  }

  /** The tool list changed: forget what annotations said. */
  forgetTools(): void {
    if (!this.options.trustAnnotations) return;
    this.#readOnly = undefined;
    this.#verdicts.clear();
  }

  /**
   * Whether and how to store `result`. `ruleTtlMs` is the TTL the config gives this request
   * (the tool's, or the category's).
   *
   * - `isError`, incomplete (`resultType` other than `'complete'`, e.g. `'input_required'`) and
   *   task results are never stored.
   * - Server hints, read as the SDK client reads them: a numeric `ttlMs` is clamped to
   *   [0, {@link MAX_CACHE_TTL_MS}] and caps the TTL; `0` is "immediately stale", so nothing is
   *   stored; on the hint-bearing methods of a 2026-07-28 upstream an absent `ttlMs` is 0 too.
   *   `cacheScope` other than `'public'` (absent included) is private. A hinted entry is never
   *   served past the server's TTL, so stale-while-revalidate does not apply to it.
   * - A result without hints (the 2025 revisions, or `tools/call` and `prompts/get`) follows the
   *   config alone and is shared within the tenant.
   */
  decide(method: string, result: unknown, modern: boolean, ruleTtlMs: number): StoreDecision | undefined {
    if (typeof result !== 'object' || result === null || Array.isArray(result)) return undefined;
    const body = result as Record<string, unknown>;
    if (body['isError'] === true) return undefined;
    const resultType = body['resultType'];
    if (resultType !== undefined && resultType !== 'complete') return undefined;
    if (body['task'] !== undefined && method === 'tools/call') return undefined;
    const ttlHint = body['ttlMs'];
    const scopeHint = body['cacheScope'];
    const hinted = typeof ttlHint === 'number' || scopeHint !== undefined || (modern && HINTED_METHODS.has(method));
    if (!hinted) {
      return ruleTtlMs > 0 ? { ttlMs: ruleTtlMs, staleTtlMs: this.options.staleTtlMs, shared: true } : undefined;
    }
    const serverTtl =
      typeof ttlHint === 'number' && Number.isFinite(ttlHint) ? Math.min(Math.max(0, ttlHint), MAX_CACHE_TTL_MS) : 0;
    const ttlMs = Math.min(ruleTtlMs, serverTtl);
    if (!(ttlMs > 0)) return undefined;
    return { ttlMs, staleTtlMs: 0, shared: scopeHint === 'public' };
  }

  #remember(name: string, verdict: number | null): number | null {
    // Tool names come from callers; bound the memo so arbitrary names cannot grow it forever.
    if (this.#verdicts.size >= 10_000) this.#verdicts.clear();
    this.#verdicts.set(name, verdict);
    return verdict;
  }
}

function compileRule(rule: ToolCacheRule): CompiledRule {
  const { name, ttlMs } = rule;
  if (!/[*?]/.test(name)) return { test: (candidate) => candidate === name, ttlMs };
  const source = name
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  const pattern = new RegExp(`^${source}$`, 's');
  return { test: (candidate) => pattern.test(candidate), ttlMs };
}

/** Whether `name` matches a `cache.tools` entry (a name or glob). Exposed for config checks and warnings. */
export function matchesToolRule(rule: string, name: string): boolean {
  return compileRule({ name: rule }).test(name);
}
