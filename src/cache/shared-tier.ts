import type { CacheCategory } from './types.js';

/** An entry as the shared tier holds it: the value and its absolute deadlines (ms, the writer's clock). */
export interface SharedEntry {
  readonly value: unknown;
  readonly expiresAt: number;
  readonly staleUntil: number;
  readonly category: CacheCategory;
}

/**
 * Which entries an invalidation drops. Every field narrows (AND); `prefix` matches the names and
 * URIs of tool calls, prompts and resource reads.
 */
export interface CacheMatcher {
  readonly group?: string | undefined;
  readonly method?: string | undefined;
  readonly name?: string | undefined;
  readonly prefix?: string | undefined;
}

export type RemoteInvalidation = { kind: 'match'; matchers: readonly CacheMatcher[] } | { kind: 'clear' };

/**
 * The second tier of {@link ResponseCache}: shared by every process that points at it, consulted
 * after memory and before the upstream. Its operations never reject and never make a caller wait
 * long: an unreachable tier behaves as an empty one.
 */
export interface SharedTier {
  /** Whether commands can be sent now; when false, reads are skipped rather than queued. */
  readonly connected: boolean;
  /** The entry under `key`, whose tag is `tag` (a tier may place entries by tag, e.g. in one Redis Cluster slot). */
  get(key: string, tag: string): Promise<SharedEntry | undefined>;
  /** Writes through with the entry's remaining lifetime; fire and forget. */
  set(key: string, tag: string, entry: SharedEntry): void;
  /** Drops matching entries from the tier and tells every other process sharing it. */
  invalidate(invalidation: RemoteInvalidation): void;
  /** Invalidations published by other processes (never this one's own). */
  onRemoteInvalidation(listener: (invalidation: RemoteInvalidation) => void): void;
  /** Resolves once the writes and invalidations sent so far have been answered (or failed). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The names a matcher can address, as methods. */
export const NAMED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

export function matchesTag(matcher: CacheMatcher, group: string, method: string, name: string): boolean {
  if (matcher.group !== undefined && matcher.group !== group) return false;
  if (matcher.method !== undefined && matcher.method !== method) return false;
  if (matcher.name !== undefined && matcher.name !== name) return false;
  if (matcher.prefix !== undefined) {
    if (matcher.method === undefined && !NAMED_METHODS.has(method)) return false;
    if (!name.startsWith(matcher.prefix)) return false;
  }
  return true;
}
