/**
 * Where a Redis is and how to talk to it: one server (`url`) or a Redis Cluster (`cluster`, the
 * URLs of some of its nodes). The same shape serves the cache's shared tier (`cache.redis`, per
 * upstream or under `defaults`) and the gateway's own shared state (the top-level `redis:`
 * section: global tenant rate limits). Keys as in the file; the resolved form is camelCase.
 */
import * as z from 'zod';

import { duration, MAX_TIMER_MS } from './duration.js';

const REDIS_URL_EXPECTATION = 'expected a redis:// or rediss:// URL';

export const redisUrlSchema = z
  .string({ error: REDIS_URL_EXPECTATION })
  .refine(
    (value) => {
      if (!URL.canParse(value)) return false;
      const { protocol } = new URL(value);
      return protocol === 'redis:' || protocol === 'rediss:';
    },
    { error: REDIS_URL_EXPECTATION },
  )
  .meta({ format: 'uri', pattern: '^[Rr][Ee][Dd][Ii][Ss][Ss]?://' });

const CLUSTER_EXPECTATION = 'expected a list of redis:// or rediss:// URLs of Redis Cluster nodes';
const TARGET_EXPECTATION = 'expected url (one Redis server) or cluster (a list of Redis Cluster node URLs)';

/** Database numbers other than 0 do not exist on a cluster node; `redis://h:7000/2` is a mistake. */
function databaseOf(url: string): number {
  const path = new URL(url).pathname.replace(/^\//, '');
  return path === '' ? 0 : Number(path);
}

/**
 * The fields of a Redis connection section. `prefix` differs between the cache and the gateway, so
 * callers give its default.
 */
export function redisConnectionSchema(defaultPrefix: string, purpose: string) {
  return z
    .strictObject(
      {
        url: redisUrlSchema.optional().meta({
          description: `redis:// or rediss:// URL of the Redis server shared by every process of this deployment (credentials in the URL). Set url or cluster.`,
        }),
        cluster: z
          .array(redisUrlSchema, { error: CLUSTER_EXPECTATION })
          .min(1, { error: CLUSTER_EXPECTATION })
          .optional()
          .meta({
            description:
              'A Redis Cluster instead of one server: the URLs of some of its nodes (three is a good number), from which the rest of the cluster is discovered. Credentials and TLS (rediss://) of the first URL apply to every node. Needs Redis 7 or later (sharded pub/sub). Set url or cluster.',
          }),
        prefix: z
          .string({ error: 'expected a key prefix (non-empty string)' })
          .min(1, { error: 'expected a key prefix (non-empty string)' })
          .optional()
          .meta({
            description: `Prefix of every key and channel ${purpose} uses in Redis. Default ${defaultPrefix}`,
            default: defaultPrefix,
          }),
        timeout: duration({ minMs: 1, maxMs: MAX_TIMER_MS }).optional().meta({
          description: 'Longest wait for one Redis command before the call goes on without it. Default 250ms.',
          default: 0.25,
          unit: 's, or ms/s/m/h',
        }),
      },
      { error: 'expected a map with url or cluster (and optionally prefix, timeout)' },
    )
    .superRefine((section, ctx) => {
      if (section.url !== undefined && section.cluster !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['cluster'],
          message: 'expected either url (one Redis server) or cluster (Redis Cluster nodes), not both',
        });
      } else if (section.url === undefined && section.cluster === undefined) {
        ctx.addIssue({ code: 'custom', path: [], message: TARGET_EXPECTATION });
      }
      const nodes = section.cluster ?? [];
      const schemes = new Set(nodes.map((url) => new URL(url).protocol));
      if (schemes.size > 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['cluster'],
          message: 'expected every cluster node URL to use the same scheme (all redis:// or all rediss://)',
        });
      }
      nodes.forEach((url, index) => {
        if (databaseOf(url) !== 0) {
          ctx.addIssue({
            code: 'custom',
            path: ['cluster', index],
            message: 'expected no database number (or /0): a Redis Cluster has database 0 only',
          });
        }
      });
    });
}

export type RedisSection = z.output<ReturnType<typeof redisConnectionSchema>>;

/** One Redis server, or the seed nodes of a Redis Cluster. */
export type RedisTarget =
  | { readonly url: string; readonly cluster?: undefined }
  | { readonly cluster: readonly string[]; readonly url?: undefined };

/** A Redis connection section, resolved: the target, the key prefix and the command deadline (ms). */
export type ResolvedRedisConfig = RedisTarget & { readonly prefix: string; readonly timeoutMs: number };

export const DEFAULT_REDIS_TIMEOUT_MS = 250;
/** The cache's key prefix (`cache.redis.prefix`). */
export const DEFAULT_CACHE_REDIS_PREFIX = 'mcp-relay:cache:';
/** The gateway's key prefix (`redis.prefix`). */
export const DEFAULT_GATEWAY_REDIS_PREFIX = 'mcp-relay:gateway:';

/** The top-level `redis:` section: what the gateway's replicas share besides the cache. */
export const redisSectionSchema = redisConnectionSchema(DEFAULT_GATEWAY_REDIS_PREFIX, 'the gateway');

export function resolveRedisSection(section: RedisSection, defaultPrefix: string): ResolvedRedisConfig {
  const common = { prefix: section.prefix ?? defaultPrefix, timeoutMs: section.timeout ?? DEFAULT_REDIS_TIMEOUT_MS };
  return Object.freeze(
    section.cluster !== undefined
      ? { cluster: Object.freeze([...section.cluster]), ...common }
      : { url: section.url!, ...common },
  );
}
