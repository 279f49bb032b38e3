#!/usr/bin/env node
import { Command } from 'commander';
import { registerConfigCommands } from './config-command.js';
import { runDemo } from './demo.js';

const program = new Command();
program
  .name('mcp-relay')
  .description('A fast, correct proxy and gateway for the Model Context Protocol')
  .version('0.1.0')
  .showHelpAfterError();

program
  .command('demo')
  .description("run the seed's examples against the bundled demo MCP server and print the results")
  .action(async () => {
    await runDemo();
  });

registerConfigCommands(program);

try {
  await program.parseAsync();
} catch (error) {
  process.stderr.write(`mcp-relay: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
