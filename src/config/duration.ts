/**
 * Durations in configuration. The seed writes them as seconds (`timeout=30.0`, `retry_delay=0.5`),
 * so a number — or a string holding only a number — means seconds. A string may instead carry a
 * unit: `'250ms'`, `'1.5s'`, `'5m'`, `'2h'`. Everything past the config layer works in integer
 * milliseconds, and the resolved config names its fields accordingly (`timeoutMs`).
 */
import * as z from 'zod';

import { RelayError, RelayErrorCode } from '../errors/index.js';

/**
 * The largest delay a Node timer honours (2^31 - 1 ms, about 24.8 days). A longer `setTimeout`
 * silently fires after 1 ms, so durations that drive timers are capped here.
 */
export const MAX_TIMER_MS = 2_147_483_647;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** What a duration string looks like; also published in the JSON Schema so editors can check it. */
export const DURATION_PATTERN = '^\\s*(\\d+(\\.\\d+)?|\\.\\d+)\\s*(ms|s|m|h)?\\s*$';
const DURATION_RE = new RegExp(DURATION_PATTERN);

/** The expectation every duration error states, so each message says what would have been accepted. */
export const DURATION_EXPECTATION =
  "expected a duration: seconds as a number (30, 0.5) or a string with a unit ('250ms', '1.5s', '5m', '2h')";

export interface DurationBounds {
  /** Smallest accepted value, in milliseconds. Default 0. */
  minMs?: number;
  /** Largest accepted value, in milliseconds. Default `Number.MAX_SAFE_INTEGER`. */
  maxMs?: number;
}

const NOT_NEGATIVE =
  "expected a duration that is not negative (seconds as a number, or a string such as '250ms', '5m')";

type DurationResult = { ok: true; ms: number } | { ok: false; message: string };

function toMs(value: number | string): DurationResult {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return { ok: false, message: NOT_NEGATIVE };
    ms = value * 1_000;
  } else {
    const match = DURATION_RE.exec(value);
    if (match === null) {
      if (value.trim().startsWith('-')) return { ok: false, message: NOT_NEGATIVE };
      const unknownUnit = /^\s*\d*\.?\d+\s*([A-Za-z]+)\s*$/.exec(value)?.[1];
      if (unknownUnit !== undefined) {
        return { ok: false, message: `expected a duration unit of ms, s, m or h (unknown unit '${unknownUnit}')` };
      }
      return { ok: false, message: DURATION_EXPECTATION };
    }
    const unit = (match[3] ?? 's') as keyof typeof UNIT_MS;
    ms = Number(match[1]) * UNIT_MS[unit];
  }
  // Sub-millisecond precision is not kept: timers and TTLs work in whole milliseconds, and rounding
  // here keeps `1.1 s` at 1100 rather than 1100.0000000000002.
  return { ok: true, ms: Math.round(ms) };
}

function describeMs(ms: number): string {
  return ms % 1_000 === 0 ? `${ms / 1_000} s` : `${ms} ms`;
}

/**
 * A duration field: accepts seconds (number or numeric string) or a string with a unit, and
 * outputs integer milliseconds. `bounds` narrows the accepted range (e.g. a timeout must be at
 * least 1 ms and fit a Node timer).
 */
export function duration(bounds: DurationBounds = {}) {
  const minMs = bounds.minMs ?? 0;
  const maxMs = bounds.maxMs ?? Number.MAX_SAFE_INTEGER;
  const range =
    maxMs === Number.MAX_SAFE_INTEGER
      ? minMs > 0
        ? ` of at least ${describeMs(minMs)}`
        : ''
      : ` from ${describeMs(minMs)} to ${describeMs(maxMs)}`;
  return z
    .union(
      [
        // The JSON Schema side (io: 'input') shows editors what is accepted; the checks that give
        // one clear message live in the transform below.
        z.number().meta({ minimum: 0 }),
        z.string().meta({ pattern: DURATION_PATTERN }),
      ],
      { error: DURATION_EXPECTATION },
    )
    .transform((value, ctx) => {
      const result = toMs(value);
      if (!result.ok) {
        ctx.issues.push({ code: 'custom', message: result.message, input: value });
        return z.NEVER;
      }
      if (result.ms < minMs || result.ms > maxMs) {
        ctx.issues.push({ code: 'custom', message: `expected a duration${range}`, input: value });
        return z.NEVER;
      }
      return result.ms;
    });
}

/** Any non-negative duration, as integer milliseconds. */
export const durationSchema = duration();

/** What users may write for a duration: seconds as a number, or a string such as `'250ms'`. */
export type DurationInput = z.input<typeof durationSchema>;

/**
 * Parses one duration to integer milliseconds, throwing `RelayError(RELAY_INVALID_CONFIG)` whose
 * message names `field`, the value received and what was expected.
 */
export function parseDuration(value: unknown, field: string, bounds: DurationBounds = {}): number {
  const result = duration(bounds).safeParse(value);
  if (result.success) return result.data;
  const message = result.error.issues[0]?.message ?? DURATION_EXPECTATION;
  throw new RelayError(RelayErrorCode.InvalidConfig, `${field}: ${message}, got ${describeValue(value)}`);
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (value === undefined) return 'nothing';
  return Array.isArray(value) ? 'an array' : 'an object';
}
