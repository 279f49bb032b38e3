/**
 * The config half of the fuzz tests: the check every parse must pass. A parse gives a config, or
 * one RELAY_INVALID_CONFIG error whose every line names the field and the expectation (with the
 * value where there is one); nothing else is ever thrown.
 */
import assert from 'node:assert/strict';

import { parseConfigText } from '../../src/config/index.js';
import { isRelayError, RelayErrorCode } from '../../src/errors/index.js';

export const ENV = { HOME: '/home/fuzz', PORT: '8081', EMPTY: '' };
export const FORMATS = ['auto', 'yaml', 'json'] as const;

/**
 * One problem line of a config error: a syntax problem with its place, or a field (dotted path, or
 * `(top level)`) followed by what was expected.
 */
const PROBLEM_LINE =
  /^ {2}(line \d+, column \d+: \S.*|cannot resolve aliases: \S.*|expected .+|\(\d+ more errors? after these, probably caused by the first\)|\S.*: .*\b(expected|did you mean)\b.*)$/;
const HEADLINE =
  /^(invalid configuration in config|invalid ProxyConfig.*|config is not valid (JSON|YAML)) \(\d+ problems?\):$/;

/** Runs a parse; it must return or throw RELAY_INVALID_CONFIG with a message of well-formed lines. */
export function expectConfigOrClearError(parse: () => unknown, input: unknown): void {
  let result: unknown;
  try {
    result = parse();
  } catch (error) {
    const shown = () => (typeof input === 'string' ? JSON.stringify(input.slice(0, 200)) : String(input));
    if (!isRelayError(error, RelayErrorCode.InvalidConfig)) {
      assert.fail(`input ${shown()} threw something else: ${error instanceof Error ? error.stack : String(error)}`);
    }
    const [headline = '', ...lines] = error.message.split('\n');
    if (!HEADLINE.test(headline) || lines.length === 0 || !lines.every((line) => PROBLEM_LINE.test(line))) {
      assert.fail(`input ${shown()} gave a malformed error:\n${error.message}`);
    }
    return;
  }
  assert.ok(typeof result === 'object' && result !== null, 'a parse returned nothing');
}

export function expectParsed(text: string, format: (typeof FORMATS)[number]): void {
  expectConfigOrClearError(() => parseConfigText(text, { format, env: ENV }), text);
}
