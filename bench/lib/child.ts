import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';

import { processTree } from './cpu.js';

/** A server running in a child process, so that its CPU does not share the benchmark's event loop. */
export interface ChildServer {
  /** What the child printed after its listening prefix (its URL). */
  url: string;
  pid: number;
  /** SIGTERM, then wait for the exit. Idempotent. */
  stop(): Promise<void>;
}

/** tsx compiles on first start; a child that prints nothing for this long is broken. */
const START_TIMEOUT_MS = 20_000;

/**
 * Spawns `command args` and resolves once it prints a line `<prefix> <url>` on stdout. Its stderr is
 * passed through, so a crash explains itself. `env` replaces the inherited environment.
 */
export async function startChildServer(
  command: string,
  args: readonly string[],
  prefix: string,
  options: { env?: NodeJS.ProcessEnv | undefined } = {},
): Promise<ChildServer> {
  const child: ChildProcess = spawn(command, [...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const lines = createInterface({ input: child.stdout! });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`\`${command} ${args.join(' ')}\` printed no '${prefix}' line in ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`\`${command} ${args.join(' ')}\` exited before listening (code ${code}, signal ${signal})`));
      });
      lines.on('line', (line) => {
        if (!line.startsWith(`${prefix} `)) return;
        clearTimeout(timer);
        resolve(line.slice(prefix.length + 1));
      });
    });
    lines.close();
    // Keep draining stdout so the child never blocks on a full pipe.
    child.stdout!.resume();
    let stopping: Promise<void> | undefined;
    return {
      url,
      pid: child.pid!,
      stop() {
        stopping ??= (async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        })();
        return stopping;
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
}

/** A TCP port that was free a moment ago, for servers that cannot be told to pick their own (`--port 0`). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Spawns `command args` (a server that prints nothing useful, such as a third-party proxy) and
 * resolves once `127.0.0.1:port` accepts a TCP connection; `url` is given by the caller. Its stdout
 * is discarded and its stderr passed through.
 */
export async function startServerOnPort(
  command: string,
  args: readonly string[],
  port: number,
  url: string,
): Promise<ChildServer> {
  const child: ChildProcess = spawn(command, [...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const deadline = performance.now() + START_TIMEOUT_MS;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`\`${command} ${args.join(' ')}\` exited before listening (code ${child.exitCode})`);
      }
      if (await accepts(port)) break;
      if (performance.now() > deadline) {
        throw new Error(`\`${command} ${args.join(' ')}\` did not listen on port ${port} in ${START_TIMEOUT_MS} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    url,
    pid: child.pid!,
    stop() {
      stopping ??= (async () => {
        // Its children may sit in their own process groups: whichever outlive it are ended by pid.
        const tree = processTree(child.pid!).slice(1);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(killer);
        for (const pid of tree) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      })();
      return stopping;
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
