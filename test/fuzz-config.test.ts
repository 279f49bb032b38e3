/**
 * Property-based fuzzing of config parsing: any text, any JSON value, and near-valid configs (the
 * real section and field names with values of every type) either give a valid config or one
 * RELAY_INVALID_CONFIG error whose every line names the field and the expectation. Nothing else is
 * ever thrown. FUZZ_CASES cases in all (100,000 by default).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import YAML from 'yaml';

import {
  authSectionShape,
  parseConfigText,
  relayConfigFileShape,
  resolveProxyConfig,
  serverSectionSchema,
  tenantEntryShape,
  UPSTREAM_FILE_KEYS,
  type ProxyConfig,
} from '../src/config/index.js';
import { isRelayError, RelayErrorCode } from '../src/errors/index.js';
import { FUZZ_CASES, fuzzParameters, PROTO_KEYS } from './helpers/fuzz.js';

const ENV = { HOME: '/home/fuzz', PORT: '8081', EMPTY: '' };
const FORMATS = ['auto', 'yaml', 'json'] as const;

/**
 * One problem line of a config error: a syntax problem with its place, or a field (dotted path, or
 * `(top level)`) followed by what was expected.
 */
const PROBLEM_LINE =
  /^ {2}(line \d+, column \d+: \S.*|cannot resolve aliases: \S.*|expected .+|\(\d+ more errors? after these, probably caused by the first\)|\S.*: .*\b(expected|did you mean)\b.*)$/;
const HEADLINE =
  /^(invalid configuration in config|invalid ProxyConfig.*|config is not valid (JSON|YAML)) \(\d+ problems?\):$/;

/** Runs a parse; it must return or throw RELAY_INVALID_CONFIG with a message of well-formed lines. */
function expectConfigOrClearError(parse: () => unknown, input: unknown): void {
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

function expectParsed(text: string, format: (typeof FORMATS)[number]): void {
  expectConfigOrClearError(() => parseConfigText(text, { format, env: ENV }), text);
}

const upstreamKeys = [...Object.values(UPSTREAM_FILE_KEYS), 'url', 'type', 'transport', 'disabled', 'autoApprove'];

/** Values of every type, and the strings config code treats specially. */
const value: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ maxLength: 16 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom(
      '${HOME}',
      '${MISSING}',
      '${PORT:-9}',
      '${EMPTY:-x}',
      '$${HOME}',
      '${',
      '${1BAD}',
      '${A:-${B}}',
      'http://user:pass@127.0.0.1:1/mcp?token=t',
      'https://example.com/mcp',
      'node',
      '5m',
      '250ms',
      '-1',
      '1e400',
      'stdio',
      'http',
      'streamable-http',
      'sse',
      ...PROTO_KEYS,
    ),
    fc.array(tie('value'), { maxLength: 3 }),
    entriesOf(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...PROTO_KEYS)), tie('value'), 3),
  ),
})).value;

/**
 * An object from generated entries, each an own property (so `__proto__` is a key, not the
 * prototype); cheaper to generate than fc.dictionary, which dominated the run time.
 */
function entriesOf<V>(key: fc.Arbitrary<string>, inner: fc.Arbitrary<V>, max: number) {
  return fc.array(fc.tuple(key, inner), { maxLength: max }).map((entries) => {
    const out: Record<string, V> = {};
    for (const [k, v] of entries)
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    return out;
  });
}

function sectionOf(keys: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
  return entriesOf(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...keys) }, fc.string({ maxLength: 8 })), value, 5);
}

const upstreamName = fc.oneof(
  fc.constantFrom('local', 'search', 'a-b_c', 'token-service'),
  fc.string({ maxLength: 10 }),
);
const upstreamEntry = fc.oneof({ weight: 9, arbitrary: sectionOf(upstreamKeys) }, value);

/** Configs built from the real section and field names, with values of any type. */
const nearValidConfig = fc
  .record(
    {
      upstreams: fc.oneof(entriesOf(upstreamName, upstreamEntry, 3), value),
      mcpServers: fc.oneof(entriesOf(upstreamName, upstreamEntry, 3), value),
      defaults: sectionOf(upstreamKeys),
      server: sectionOf(Object.keys(serverSectionSchema.shape)),
      auth: sectionOf(Object.keys(authSectionShape)),
      tenants: entriesOf(fc.string({ maxLength: 8 }), sectionOf(Object.keys(tenantEntryShape)), 2),
      other: entriesOf(fc.constantFrom(...Object.keys(relayConfigFileShape), ...PROTO_KEYS), value, 2),
    },
    { requiredKeys: [] },
  )
  .map(({ other, ...sections }) => ({ ...other, ...sections }));

test(`config text: ${Math.round(FUZZ_CASES * 0.35)} random texts as YAML, JSON and auto give a config or a clear error`, () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.string({ maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 120 })),
      fc.constantFrom(...FORMATS),
      (text, format) => expectParsed(text, format),
    ),
    fuzzParameters(Math.round(FUZZ_CASES * 0.35)),
  );
});

test(`config values: ${Math.round(FUZZ_CASES * 0.25)} arbitrary JSON values written as JSON and YAML give a config or a clear error`, () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 3 }), fc.boolean(), (json, asYaml) =>
      expectParsed(asYaml ? YAML.stringify(json) : JSON.stringify(json), asYaml ? 'yaml' : 'json'),
    ),
    fuzzParameters(Math.round(FUZZ_CASES * 0.25)),
  );
});

test(`near-valid configs and mcpServers files: ${Math.round(FUZZ_CASES * 0.3)} cases give a config or an error naming field, value and expectation`, () => {
  fc.assert(
    fc.property(nearValidConfig, fc.constantFrom(...FORMATS), (config, format) => {
      const text = format === 'yaml' ? YAML.stringify(config) : JSON.stringify(config);
      expectParsed(text, format);
    }),
    fuzzParameters(Math.round(FUZZ_CASES * 0.3)),
  );
});

test(`ProxyConfig objects: ${Math.round(FUZZ_CASES * 0.1)} cases give a resolved upstream or a clear error`, () => {
  const camelKeys = Object.keys(UPSTREAM_FILE_KEYS);
  fc.assert(
    fc.property(sectionOf(camelKeys), (input) =>
      expectConfigOrClearError(() => resolveProxyConfig(input as ProxyConfig), JSON.stringify(input)),
    ),
    fuzzParameters(Math.round(FUZZ_CASES * 0.1)),
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
