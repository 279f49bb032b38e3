/**
 * Logs: pino JSON lines with request ids, and no secret ever in them — not upstream tokens, not
 * secret header values, not callers' API keys, not webhook credentials — whether a secret sits
 * under a known key or is quoted inside a message.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { parseConfigText, resolveTelemetrySection, type ResolvedRelayConfig } from '../src/config/index.js';
import { secretsOf } from '../src/dashboard/index.js';
import { startGateway } from '../src/gateway/index.js';
import { createLogger, REDACTED } from '../src/telemetry/index.js';
import { startInProcessHttpFixture } from './fixtures/index.js';

const demo = await startInProcessHttpFixture({ mode: 'modern' });
after(() => demo.stop());

const SECRETS = {
  upstreamToken: 'upstream-token-S3CRET-0001',
  upstreamHeader: 'header-value-S3CRET-0002',
  apiKey: 'caller-api-key-S3CRET-0003',
  webhook: 'webhook-token-S3CRET-0004',
};

function capture() {
  const text: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text.push(chunk.toString('utf8'));
      done();
    },
  });
  return {
    stream,
    lines: () =>
      text
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    raw: () => text.join(''),
  };
}

function config(): ResolvedRelayConfig {
  return parseConfigText(
    `
upstreams:
  demo:
    server_url: ${demo.url}
    auth_token: ${SECRETS.upstreamToken}
    headers: { X-Upstream-Key: ${SECRETS.upstreamHeader} }
    max_retries: 0
  down:
    server_url: http://127.0.0.1:9/mcp
    auth_token: ${SECRETS.upstreamToken}
    max_retries: 0
auth:
  api_keys:
    ci: { key: ${SECRETS.apiKey}, tenant: acme }
tenants:
  acme: {}
alerts:
  thresholds: { memory_usage: 0.0001 }
  webhook:
    url: http://127.0.0.1:9/hook
    headers: { Authorization: "Bearer ${SECRETS.webhook}" }
telemetry:
  logging: { level: debug, requests: true, redact_headers: [x-upstream-key] }
`,
    { format: 'yaml' },
  );
}

test('the logger removes secrets by key and by value, on every line', () => {
  const out = capture();
  const logger = createLogger({ destination: out.stream, secrets: [SECRETS.apiKey], secretHeaders: ['x-custom'] });
  logger.info(
    {
      headers: { authorization: `Bearer ${SECRETS.apiKey}`, 'x-custom': 'custom-value', accept: 'json' },
      upstream: { auth_token: 'abc-token', authToken: 'def-token' },
    },
    `upstream said: invalid key ${SECRETS.apiKey}`,
  );
  logger.flush();
  const [line] = out.lines();
  assert.deepEqual(line?.['headers'], { authorization: REDACTED, 'x-custom': REDACTED, accept: 'json' });
  assert.deepEqual(line?.['upstream'], { auth_token: REDACTED, authToken: REDACTED });
  assert.equal(line?.['msg'], `upstream said: invalid key ${REDACTED}`);
  assert.ok(!out.raw().includes(SECRETS.apiKey));
});

test('the secrets of a configuration are collected: tokens, secret headers, API keys, webhook credentials', () => {
  const resolved = config();
  const secrets = secretsOf(
    { upstreams: resolved.upstreams, auth: resolved.auth, alerts: resolved.alerts },
    resolveTelemetrySection({ logging: { redact_headers: ['x-upstream-key'] } }),
  );
  for (const secret of Object.values(SECRETS)) assert.ok(secrets.includes(secret), secret);
});

test('a gateway run with calls, refusals, failures and alerts logs request ids and no secret', async () => {
  const resolved = config();
  const out = capture();
  const gateway = await startGateway({
    port: 0,
    upstreams: resolved.upstreams,
    auth: resolved.auth,
    tenants: resolved.tenants,
    alerts: { ...resolved.alerts!, evaluateEveryMs: 100 },
    telemetry: resolved.telemetry,
    logger: createLogger({
      level: 'debug',
      destination: out.stream,
      secretHeaders: resolved.telemetry!.logging.redactHeaders,
      secrets: secretsOf(
        { upstreams: resolved.upstreams, auth: resolved.auth, alerts: resolved.alerts },
        resolved.telemetry!,
      ),
    }),
  });
  const client = new Client({ name: 'logs-test', version: '1.0.0' });
  try {
    // Refused: a wrong key.
    const refused = await fetch(`${gateway.url}/mcp`, {
      method: 'POST',
      headers: { authorization: 'Bearer not-the-key-at-all-000', 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(refused.status, 401);
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp/demo`), {
        requestInit: { headers: { authorization: `Bearer ${SECRETS.apiKey}`, 'x-request-id': 'req-from-client-1' } },
      }),
    );
    await client.callTool({ name: 'echo', arguments: { text: 'hello' } });
    await client.callTool({ name: 'fail', arguments: { message: `tool failed quoting ${SECRETS.upstreamToken}` } });
    // A failing upstream: its error is logged.
    const down = new Client({ name: 'logs-test-down', version: '1.0.0' });
    await down
      .connect(
        new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp/down`), {
          requestInit: { headers: { authorization: `Bearer ${SECRETS.apiKey}` } },
        }),
      )
      .then(() => down.callTool({ name: 'echo', arguments: { text: 'x' } }))
      .catch(() => undefined);
    await down.close();
    // The memory alert (threshold 0.01 %) fires and its webhook POST fails: both logged.
    const alerts = gateway.telemetry.alerts!;
    if (!alerts.firing().some((alert) => alert.rule === 'memory_usage')) {
      await new Promise<void>((resolve) => alerts.once('firing', () => resolve()));
    }
    await gateway.telemetry.flush();
    // Something quoting a secret, logged by anyone holding the logger.
    gateway.telemetry.logger.error({ config: { auth_token: SECRETS.upstreamToken } }, `leak? ${SECRETS.webhook}`);
  } finally {
    await client.close();
    await gateway.close();
  }
  gateway.telemetry.logger.flush();
  const raw = out.raw();
  for (const [name, secret] of Object.entries(SECRETS)) assert.ok(!raw.includes(secret), `${name} appears in the logs`);
  const lines = out.lines();
  const requests = lines.filter((line) => line['msg'] === 'request');
  assert.ok(requests.length >= 3, 'an access line per request');
  assert.ok(requests.every((line) => typeof line['requestId'] === 'string' && line['requestId'] !== ''));
  assert.ok(
    requests.some((line) => line['requestId'] === 'req-from-client-1'),
    "the client's x-request-id is kept",
  );
  assert.ok(requests.some((line) => line['status'] === 401));
  assert.ok(lines.some((line) => String(line['msg']).startsWith('alert firing: memory')));
  assert.ok(lines.some((line) => String(line['msg']).startsWith('alert webhook failed')));
  assert.ok(
    lines.some((line) => line['level'] === 40 && line['upstream'] === 'down' && typeof line['requestId'] === 'string'),
    'the failed call is logged with its request id',
  );
  assert.ok(raw.includes(REDACTED));
});
