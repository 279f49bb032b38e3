import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

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
 * passed through, so a crash explains itself.
 */
export async function startChildServer(command: string, args: readonly string[], prefix: string): Promise<ChildServer> {
  const child: ChildProcess = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'inherit'] });
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
