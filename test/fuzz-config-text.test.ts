/**
 * Property-based fuzzing of config text: random strings and arbitrary JSON values, read as YAML,
 * JSON and auto-detected, plus hostile texts (100,000 levels of nesting, alias bombs). 65 % of
 * FUZZ_CASES; fuzz-config.test.ts runs the structural 35 %.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import YAML from 'yaml';

import { parseConfigText } from '../src/config/index.js';
import { isRelayError, RelayErrorCode } from '../src/errors/index.js';
import { FUZZ_CASES, fuzzParameters } from './helpers/fuzz.js';
import { ENV, expectParsed, FORMATS } from './helpers/fuzz-config.js';

test(`config text: ${Math.round(FUZZ_CASES * 0.45)} random texts as YAML, JSON and auto give a config or a clear error`, () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.string({ maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 120 })),
      fc.constantFrom(...FORMATS),
      (text, format) => expectParsed(text, format),
    ),
    fuzzParameters(Math.round(FUZZ_CASES * 0.45)),
  );
});

test(`config values: ${Math.round(FUZZ_CASES * 0.2)} arbitrary JSON values written as JSON and YAML give a config or a clear error`, () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 3 }), fc.boolean(), (json, asYaml) =>
      expectParsed(asYaml ? YAML.stringify(json) : JSON.stringify(json), asYaml ? 'yaml' : 'json'),
    ),
    fuzzParameters(Math.round(FUZZ_CASES * 0.2)),
  );
});

test('hostile texts: nested 100,000 deep, alias bombs and dangling aliases are clear errors, and parsing still works after', () => {
  const hostile = [
    '['.repeat(100_000) + ']'.repeat(100_000),
    '{"upstreams":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}',
    '- '.repeat(50_000) + 'x',
    'a:\n' + Array.from({ length: 5000 }, (_, i) => ' '.repeat(i + 1) + 'b:').join('\n'),
    'a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
    'upstreams: *nowhere',
  ];
  // Twice each: a stack overflow inside the YAML parser once made the next parse abort the process.
  for (const text of [...hostile, ...hostile]) {
    for (const format of FORMATS) {
      assert.throws(
        () => parseConfigText(text, { format, env: ENV }),
        (error: unknown) =>
          isRelayError(error, RelayErrorCode.InvalidConfig) && /\(1 problem\):\n {2}\S/.test(error.message),
      );
    }
  }
  const config = parseConfigText('upstreams:\n  local:\n    command: node\n', { env: ENV });
  assert.equal(config.upstreams[0]?.name, 'local');
});
