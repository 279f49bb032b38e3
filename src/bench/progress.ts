/**
 * Progress of `mcp-relay bench` on standard error: a bar per phase redrawn in place on a terminal,
 * one line per phase otherwise (CI logs stay readable).
 */
const WIDTH = 28;

export interface ProgressStream {
  readonly isTTY?: boolean | undefined;
  write(text: string): unknown;
}

/** A `(phase, fraction)` callback for `runBenchmarkSuite`'s `onProgress`. */
export function progressBar(stream: ProgressStream): (phase: string, fraction: number) => void {
  let current: string | undefined;
  let drawn = -1;
  return (phase, fraction) => {
    const f = Math.max(0, Math.min(1, fraction));
    if (phase !== current) {
      if (current !== undefined && drawn < 1 && stream.isTTY === true) stream.write('\n');
      current = phase;
      drawn = -1;
      if (stream.isTTY !== true) stream.write(`${phase} …\n`);
    }
    if (stream.isTTY !== true) {
      if (f >= 1 && drawn < 1) stream.write(`${phase}: done\n`);
      drawn = f >= 1 ? 1 : 0;
      return;
    }
    const filled = Math.round(f * WIDTH);
    // Redraw only when the bar changes (or it completes).
    if (filled === Math.round(drawn * WIDTH) && f < 1) return;
    drawn = f;
    stream.write(
      `\r${phase.padEnd(30)} [${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${String(Math.round(f * 100)).padStart(3)} %${f >= 1 ? '\n' : ''}`,
    );
  };
}
