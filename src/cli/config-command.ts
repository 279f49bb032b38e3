/**
 * `mcp-relay config validate <file>` and `mcp-relay config schema`. Output goes through the root
 * command's `configureOutput()` writers, so an embedding program (or a test) can capture it.
 */
import type { Command } from 'commander';

import { loadConfigFile, relayConfigJsonSchema } from '../config/index.js';
import { isRelayError, RelayErrorCode } from '../errors/index.js';

interface Writers {
  out: (text: string) => void;
  err: (text: string) => void;
}

function writersOf(command: Command): Writers {
  let root = command;
  while (root.parent) root = root.parent;
  const configured = root.configureOutput();
  return {
    out: (text) => (configured.writeOut ? configured.writeOut(text) : process.stdout.write(text)),
    err: (text) => (configured.writeErr ? configured.writeErr(text) : process.stderr.write(text)),
  };
}

/** Adds the `config` command group to `program`; returns the group. */
export function registerConfigCommands(program: Command): Command {
  const config = program
    .command('config')
    .description('check a configuration file, or print the JSON Schema of the format');

  config
    .command('validate')
    .description('load a YAML or JSON config file and report every problem in it (exit code 1 if any)')
    .argument('<file>', 'the config file (.yaml, .yml or .json)')
    .action(async (file: string, _options: unknown, command: Command) => {
      const { out, err } = writersOf(command);
      try {
        const { upstreams } = await loadConfigFile(file);
        const noun = upstreams.length === 1 ? 'upstream' : 'upstreams';
        out(`ok: ${upstreams.length} ${noun} (${upstreams.map((u) => u.name).join(', ')})\n`);
      } catch (error) {
        if (!isRelayError(error, RelayErrorCode.InvalidConfig)) throw error;
        err(`${error.message}\n`);
        process.exitCode = 1;
      }
    });

  config
    .command('schema')
    .description('print the JSON Schema of the config file format, for editors')
    .action((_options: unknown, command: Command) => {
      writersOf(command).out(`${JSON.stringify(relayConfigJsonSchema(), null, 2)}\n`);
    });

  return config;
}
