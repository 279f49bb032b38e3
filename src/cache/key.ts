/**
 * Cache keys. A key must be equal for two requests that an upstream answers identically and differ
 * for any two it might answer differently: `{a:1,b:2}` and `{b:2,a:1}` are one key, two tenants
 * never are.
 *
 * The hot path builds a key per call, so the canonical JSON skips the sort when the arguments are
 * already in canonical order (the common case: callers write literals the same way every time) and
 * falls back to building a sorted copy only when they are not. `JSON.stringify` itself stays native.
 */

/**
 * JSON of `value` with the keys of every object, at every depth, in canonical order: array-index
 * keys ascending (JavaScript enumerates them first whatever the insertion order), then the other
 * keys by code unit. Two values equal as JSON documents give the same string.
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(isCanonical(value, 0) ? value : canonicalize(value, 0)) ?? '';
}

const MAX_DEPTH = 256;

function isCanonical(value: unknown, depth: number): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (depth > MAX_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isCanonical(value[i], depth + 1)) return false;
    return true;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  let previous: string | undefined;
  for (const key in value) {
    // Array-index keys are enumerated first and ascending by the engine itself: nothing to check.
    if (!isArrayIndex(key)) {
      if (previous !== undefined && key < previous) return false;
      previous = key;
    }
    if (!isCanonical((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

function canonicalize(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_DEPTH) throw new TypeError(`cache key arguments are nested deeper than ${MAX_DEPTH} levels`);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return canonicalize((toJSON as () => unknown).call(value), depth + 1);
  if (Array.isArray(value)) return value.map((item) => canonicalize(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    out[key] = canonicalize((value as Record<string, unknown>)[key], depth + 1);
  }
  return out;
}

function isArrayIndex(key: string): boolean {
  const first = key.charCodeAt(0);
  if (first < 48 || first > 57) return false;
  const n = Number(key);
  return n >>> 0 === n && n !== 4294967295 && String(n) === key;
}

/**
 * The part of a key that is fixed for one tenant, upstream group, method and name. Every variable
 * part is length-prefixed so that no choice of tenant, group or name can make two keys collide;
 * the arguments' JSON comes last.
 * Proxies compute it once and append {@link canonicalJson} of each call's arguments.
 */
export function keyPrefix(tenant: string, group: string, method: string, name: string): string {
  return `${tenant.length}:${tenant}|${group.length}:${group}|${method}|${name.length}:${name}|`;
}

/** The full key: {@link keyPrefix} plus the canonical JSON of the arguments. */
export function cacheKey(tenant: string, group: string, method: string, name: string, args: unknown): string {
  return keyPrefix(tenant, group, method, name) + canonicalJson(args);
}

/**
 * Where an entry the server marked `cacheScope: 'private'` lives: the key under the caller's
 * identity. Shared keys start with a digit (the tenant's length), private ones with `p`.
 */
export function privateKey(key: string, identity: string): string {
  return `p${identity.length}:${identity}|${key}`;
}

export function isPrivateKey(key: string): boolean {
  return key.charCodeAt(0) === 112;
}

/**
 * What invalidation addresses: an upstream group, a method and a name (tool or prompt name,
 * resource URI, `''` for lists). Tenant and identity are not part of it: an upstream's
 * `resources/updated` makes the URI stale for everyone.
 */
export function cacheTag(group: string, method: string, name: string): string {
  return `${group}\u0000${method}\u0000${name}`;
}

export function parseTag(tag: string): { group: string; method: string; name: string } {
  const first = tag.indexOf('\u0000');
  const second = tag.indexOf('\u0000', first + 1);
  return { group: tag.slice(0, first), method: tag.slice(first + 1, second), name: tag.slice(second + 1) };
}
