/**
 * The gateway as users run it: `npm start` and the `mcp-relay` bin execute the compiled
 * `dist/cli/main.js`, not the TypeScript sources through tsx. Benchmarks that compare the gateway
 * with other servers run that same build, compiled once per benchmark process from the sources
 * as they are. (Through tsx every closure made per request also pays a `__name` helper call,
 * esbuild's keepNames: about a tenth of a cached call's CPU, which no user pays.)
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

let built: string | undefined;

/** Compiles the sources (`npm run build`) on first use; returns the path of the built CLI. */
export function builtCli(): string {
  if (built === undefined) {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', join(REPO, 'tsconfig.build.json')], { cwd: REPO, stdio: 'inherit' });
    built = join(REPO, 'dist/cli/main.js');
  }
  return built;
}
