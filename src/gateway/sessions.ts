/**
 * Sealed ids for legacy (2025-06-18 / 2025-11-25) sessions, so that any gateway replica can serve
 * any session without a session directory.
 *
 * An id carries what a replica needs to take the session over (the negotiated protocol version,
 * the scope: `/mcp` or one `/mcp/<name>`, when it was issued) and an HMAC-SHA256 over those fields
 * and the caller who opened it (tenant and identity, bound into the MAC but never written into the
 * id). A replica that does not hold an id verifies it once and adopts the session; an id that was
 * forged, altered, expired or is presented by another caller fails verification and is as unknown
 * as any other: 404. The gateway keeps no upstream state per inbound session, so adoption needs
 * nothing more than this.
 *
 * Form (visible ASCII only, as the 2025 transports require of Mcp-Session-Id: 0x21-0x7E):
 *
 *   1.<issued-at, ms, base 36>.<nonce, 16 random bytes>.<protocol version>.<scope or empty>.<MAC>
 *
 * with the nonce, scope and MAC in base64url. The MAC is checked before any field is read.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import type { Caller } from './core.js';

/** A session id this process did not hold, taken up: `{ version, scope }` (the sealed claims). */
export interface SessionAdoptedEvent {
  readonly version: string;
  readonly scope: string | undefined;
}

/**
 * An id this process did not hold, refused with 404: `invalid` (not sealed by this deployment for
 * this caller, or expired: which is not told), `deleted` (a DELETE recorded here or in Redis), or
 * `scope` (sealed for an upstream this process does not serve).
 */
export interface SessionRefusedEvent {
  readonly reason: 'invalid' | 'deleted' | 'scope';
}

/**
 * Published on `node:diagnostics_channel` when a process meets a session id it does not hold:
 * each is one verification (a held session is found in memory and publishes nothing).
 */
export const sessionChannels = {
  adopted: diagnosticsChannel.channel('mcp-relay:gateway:session-adopted'),
  refused: diagnosticsChannel.channel('mcp-relay:gateway:session-refused'),
};

/** The id format's version: the first field. Bump it when the fields change. */
const FORMAT = '1';
/** Longest id worth verifying; anything longer is not one of ours (ours are ~110 characters). */
const MAX_ID_LENGTH = 512;
const MAC_CHARS = 43; // base64url of the 32-byte HMAC-SHA256, unpadded

/** What a sealed id says about its session. */
export interface SealedSession {
  /** The protocol version negotiated at initialize. */
  readonly version: string;
  /** The upstream the session is scoped to (`/mcp/<name>`), or undefined for `/mcp`. */
  readonly scope: string | undefined;
  /** When initialize issued it, in ms since the epoch. */
  readonly issuedAt: number;
}

export interface SessionSealOptions {
  /**
   * The key shared by every replica. Without it a random 32-byte key is drawn: the ids this
   * process issues are valid on it alone.
   */
  secret?: string | undefined;
  /** Absolute lifetime of an id from its issue, in ms. */
  maxAgeMs: number;
  /** Wall-clock milliseconds (ids cross processes, so not a monotonic clock). Default `Date.now`. */
  now?: (() => number) | undefined;
}

/** Issues and verifies sealed session ids. */
export class SessionSeal {
  readonly #key: Buffer;
  readonly #maxAgeMs: number;
  readonly #now: () => number;

  constructor(options: SessionSealOptions) {
    if (!Number.isFinite(options.maxAgeMs) || options.maxAgeMs <= 0) {
      throw new RangeError(`maxAgeMs: expected a positive number of milliseconds, got ${options.maxAgeMs}`);
    }
    this.#key = options.secret === undefined ? randomBytes(32) : Buffer.from(options.secret, 'utf8');
    this.#maxAgeMs = options.maxAgeMs;
    this.#now = options.now ?? Date.now;
  }

  /** Absolute lifetime of an id, in ms. */
  get maxAgeMs(): number {
    return this.#maxAgeMs;
  }

  /** Whether a session issued at `issuedAt` has outlived its absolute lifetime. */
  expired(issuedAt: number): boolean {
    return this.#now() - issuedAt >= this.#maxAgeMs;
  }

  /** A new id for a session `caller` opens now. */
  seal(caller: Caller | undefined, version: string, scope: string | undefined): { id: string; issuedAt: number } {
    const issuedAt = this.#now();
    const scopeField = scope === undefined ? '' : Buffer.from(scope, 'utf8').toString('base64url');
    const body = `${FORMAT}.${issuedAt.toString(36)}.${randomBytes(16).toString('base64url')}.${version}.${scopeField}`;
    return { id: `${body}.${this.#mac(body, caller).toString('base64url')}`, issuedAt };
  }

  /**
   * What `id` says, if this deployment issued it to `caller` and it has not expired; otherwise
   * undefined (the caller answers 404 either way: which check failed is not revealed).
   */
  open(id: string, caller: Caller | undefined): SealedSession | undefined {
    if (id.length > MAX_ID_LENGTH || !id.startsWith(`${FORMAT}.`)) return undefined;
    const dot = id.lastIndexOf('.');
    if (id.length - dot - 1 !== MAC_CHARS) return undefined;
    const body = id.slice(0, dot);
    // Compared as text, not decoded: base64url's last character has spare bits, and a decoded
    // comparison would accept several spellings of one id (and so slip past a recorded DELETE).
    const expected = Buffer.from(this.#mac(body, caller).toString('base64url'), 'latin1');
    if (!timingSafeEqual(Buffer.from(id.slice(dot + 1), 'latin1'), expected)) return undefined;
    const fields = body.split('.');
    if (fields.length !== 5) return undefined;
    const issuedAt = parseInt(fields[1]!, 36);
    if (!Number.isSafeInteger(issuedAt) || this.expired(issuedAt)) return undefined;
    const scope = fields[4]!;
    return {
      version: fields[3]!,
      scope: scope === '' ? undefined : Buffer.from(scope, 'base64url').toString('utf8'),
      issuedAt,
    };
  }

  /**
   * HMAC-SHA256 over the id's fields and the caller. Tenant and identity are length-prefixed so
   * no two callers produce the same input; an anonymous session (no authentication) binds '-'.
   */
  #mac(body: string, caller: Caller | undefined): Buffer {
    const hmac = createHmac('sha256', this.#key).update(body);
    if (caller === undefined) hmac.update('\n-');
    else hmac.update(`\n${caller.tenant.length}:${caller.tenant}\n${caller.identity.length}:${caller.identity}`);
    return hmac.digest();
  }
}
