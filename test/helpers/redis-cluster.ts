/**
 * A three-node Redis Cluster (three masters, no replicas) started from the `redis-server` and
 * `redis-cli` binaries on free loopback ports, with persistence off and its node files in a temp
 * directory. `stop()` kills the nodes by pid and removes the directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createClient } from 'redis';

export interface RedisClusterHandle {
  /** `redis://127.0.0.1:<port>` of each node. */
  readonly urls: readonly string[];
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

const READY_DEADLINE_MS = 30_000;

export async function startRedisCluster(nodes = 3): Promise<RedisClusterHandle> {
  for (const binary of ['redis-server', 'redis-cli']) {
    const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    if (probe.error !== undefined || probe.status !== 0) {
      throw new Error(`${binary} is not installed; the Redis Cluster tests need it: run scripts/ensure-redis.sh`);
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'mcp-relay-cluster-'));
  const children: ChildProcess[] = [];
  const exits: Promise<void>[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      }
      await Promise.all(exits);
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    const ports = await freePorts(nodes);
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push(child);
      exits.push(new Promise((resolve) => child.once('exit', () => resolve())));
      await untilOutput(child, 'Ready to accept connections', `redis-server on port ${port}`);
    }
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: READY_DEADLINE_MS },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    const urls = ports.map((port) => `redis://127.0.0.1:${port}`);
    for (const url of urls) await untilClusterOk(url);
    return { urls, pids: children.map((c) => c.pid!), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function untilOutput(child: ChildProcess, text: string, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes(text)) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`${what} exited with ${code}: ${output}`));
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Waits until the node reports `cluster_state:ok` (every slot served). */
async function untilClusterOk(url: string): Promise<void> {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const deadline = Date.now() + READY_DEADLINE_MS;
    for (;;) {
      const info = await client.clusterInfo();
      if (/cluster_state:ok/.test(info)) return;
      if (Date.now() > deadline) throw new Error(`${url} did not reach cluster_state:ok: ${info}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await client.close();
  }
}

/** Distinct free ports; a cluster node also listens on port + 10000 (its bus), which must be free too. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (port + 10000 > 65535 || ports.includes(port)) continue;
    if (!(await isFree(port + 10000))) continue;
    ports.push(port);
  }
  return ports;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function isFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
