import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';

import { createClient } from 'redis';

/** Whether a Redis answers at `url` (connect and PING within half a second). */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 500, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    await client.close();
    return true;
  } catch {
    if (client.isOpen) client.destroy();
    return false;
  }
}

/** Deletes every key matching `pattern` (a test run's own prefix). */
export async function removeRedisKeys(url: string, pattern: string): Promise<void> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  for await (const keys of client.scanIterator({ MATCH: pattern, COUNT: 500 }))
    if (keys.length > 0) await client.unlink(keys);
  await client.close();
}

/** A `redis-server` a test started and owns: the only kind a test may stop. */
export interface OwnRedis {
  url: string;
  port: number;
  pid: number;
  /** SIGKILL by pid, then wait for the exit. Idempotent. */
  stop(): Promise<void>;
}

function requireRedisServer(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      'redis-server is not installed, and the cache tests need a real Redis: run scripts/ensure-redis.sh ' +
        '(apt-get install -y redis-server), or set REDIS_URL to a running one',
    );
  }
}

/**
 * Starts `redis-server` on a free port, or on `port` (a restart where a stopped one was), with
 * persistence off; resolves once it accepts connections. stop() kills it by pid.
 */
export async function startOwnRedis(port?: number): Promise<OwnRedis> {
  requireRedisServer();
  const chosen = port ?? (await redisPort());
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`redis-server on port ${chosen} exited with ${code}: ${output}`)));
  });
  let stopping: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    pid: child.pid!,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
        await exited;
      })();
      return stopping;
    },
  };
}

/**
 * A free port for a test's own redis-server, drawn at random below the kernel's ephemeral range
 * (32768-60999 here). A port from that range, once its Redis is stopped, can be handed by the
 * kernel to another test process's own redis-server; a client reconnecting to the stopped one
 * then finds a Redis answering there and reports it up (seen once in CI). Below the range only
 * another random draw can collide.
 */
async function redisPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return port;
    }
  }
  return freePort();
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
