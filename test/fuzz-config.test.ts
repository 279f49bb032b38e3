/**
 * Property-based fuzzing of config structure: near-valid configs and mcpServers files (the real
 * section and field names with values of every type, proto-pollution keys, ${VAR} references) and
 * ProxyConfig objects. 35 % of FUZZ_CASES; fuzz-config-text.test.ts runs the other 65 %.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import YAML from 'yaml';

import {
  authSectionShape,
  relayConfigFileShape,
  resolveProxyConfig,
  serverSectionSchema,
  tenantEntryShape,
  UPSTREAM_FILE_KEYS,
  type ProxyConfig,
} from '../src/config/index.js';
import { FUZZ_CASES, fuzzParameters, PROTO_KEYS } from './helpers/fuzz.js';
import { expectConfigOrClearError, expectParsed, FORMATS } from './helpers/fuzz-config.js';

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

test(`near-valid configs and mcpServers files: ${Math.round(FUZZ_CASES * 0.25)} cases give a config or an error naming field, value and expectation`, () => {
  fc.assert(
    fc.property(nearValidConfig, fc.constantFrom(...FORMATS), (config, format) => {
      const text = format === 'yaml' ? YAML.stringify(config) : JSON.stringify(config);
      expectParsed(text, format);
    }),
    fuzzParameters(Math.round(FUZZ_CASES * 0.25)),
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
