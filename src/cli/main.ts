#!/usr/bin/env node
import { Command } from 'commander';
import { registerBenchCommand } from './bench.js';
import { registerConfigCommands } from './config-command.js';
import { runDemo } from './demo.js';
import { serve, serveStdio } from './serve.js';

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

program
  .command('serve')
  .description('run the gateway: one MCP endpoint (Streamable HTTP) in front of every configured upstream')
  .option('-c, --config <file>', 'configuration file (YAML or JSON); without it, the bundled demo server')
  .option('--host <host>', 'address to bind (default 127.0.0.1, or server.host from the file)')
  .option('-p, --port <port>', 'port to listen on; 0 picks a free one (default 8080, or server.port)')
  .action(async (flags: { config?: string; host?: string; port?: string }) => {
    await serve(flags, (line) => process.stdout.write(line + '\n'));
  });

program
  .command('stdio')
  .description('run the gateway over stdio, for MCP clients that can only spawn a command')
  .option('-c, --config <file>', 'configuration file (YAML or JSON); without it, the bundled demo server')
  .action(async (flags: { config?: string }) => {
    await serveStdio(flags);
  });

registerConfigCommands(program);
registerBenchCommand(program);

try {
  await program.parseAsync();
} catch (error) {
  process.stderr.write(`mcp-relay: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
