/**
 * A tiny CLI entry for the config tests: `registerConfigCommands` on a fresh commander program,
 * run as a real child process so exit codes and stdout/stderr are observed as a user sees them.
 */
import { Command } from 'commander';

import { registerConfigCommands } from '../../src/cli/config-command.js';

const program = new Command().name('mcp-relay');
registerConfigCommands(program);
await program.parseAsync(process.argv.slice(2), { from: 'user' });
