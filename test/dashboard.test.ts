/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core (no
 * browser download). The page loads without console errors, its numbers change while traffic
 * flows through the gateway, and an alert shows when one fires. A screenshot is kept in
 * test-artifacts/ (gitignored). `scripts/ensure-chromium.sh` installs Chromium where it is missing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { chromium, type Browser } from 'playwright-core';

import { resolveAlertsSection, resolveProxyConfig } from '../src/config/index.js';
import { startGateway, type Gateway } from '../src/gateway/index.js';
import { createLogger, type Alert } from '../src/telemetry/index.js';
import { startInProcessHttpFixture, type InProcessHttpFixture } from './fixtures/index.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

let demo: InProcessHttpFixture;
let gateway: Gateway;
let browser: Browser;
let client: Client;

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium is missing at ${CHROMIUM}: run scripts/ensure-chromium.sh (apt-get install chromium) before this test`,
  );
  demo = await startInProcessHttpFixture({ mode: 'modern' });
  gateway = await startGateway({
    port: 0,
    upstreams: [resolveProxyConfig({ name: 'demo', serverUrl: demo.url, maxRetries: 0, cache: { tools: ['add'] } })],
    alerts: {
      ...resolveAlertsSection({
        thresholds: { high_latency: { p95_ms: 100, p99_ms: false }, connection_pool_exhaustion: false },
        min_samples: 5,
        window: 2000,
      }),
      evaluateEveryMs: 100,
    },
    dashboardIntervalMs: 250,
    logger: createLogger({ level: 'silent' }),
  });
  client = new Client({ name: 'dashboard-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`)));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
});

after(async () => {
  await browser?.close();
  await client?.close();
  await gateway?.close();
  await demo?.stop();
});

/** Calls through the gateway until `stop` is set: misses (echo) and hits (add). */
function traffic(): { stop(): Promise<void> } {
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      await client.callTool({ name: 'echo', arguments: { text: `t${i}` } });
      await client.callTool({ name: 'add', arguments: { a: 1, b: i % 3 } });
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

function number(text: string | null): number {
  return Number((text ?? '').replaceAll(',', ''));
}

test('the dashboard loads without console errors, shows numbers that change while traffic flows, and shows an alert when one fires', async () => {
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    // The feed's stream is cut when the page closes; anything else failing is a problem.
    if (!request.url().endsWith('/dashboard/events')) problems.push(`request failed: ${request.url()}`);
  });
  const requested: string[] = [];
  page.on('request', (request) => requested.push(request.url()));

  const response = await page.goto(`${gateway.url}/`);
  assert.equal(response?.status(), 200);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live');

  const load = traffic();
  try {
    // Numbers that change while traffic flows: the call count grows between two snapshots, and
    // ops/s, P95 and the hit rate show values.
    await page.waitForFunction(
      () => Number(document.getElementById('kpi-calls')?.textContent?.replaceAll(',', '')) > 20,
    );
    const first = number(await page.textContent('#kpi-calls'));
    await page.waitForFunction(
      (seen) => Number(document.getElementById('kpi-calls')?.textContent?.replaceAll(',', '')) > seen,
      first,
    );
    await page.waitForFunction(() => Number(document.getElementById('kpi-ops')?.textContent?.replaceAll(',', '')) > 0);
    assert.match((await page.textContent('#kpi-p95')) ?? '', /\d/);
    assert.match((await page.textContent('#kpi-hit')) ?? '', /^\d+(\.\d)? %$/);
    assert.ok(number(await page.textContent('#kpi-calls')) > first);
    assert.equal(await page.locator('#upstreams-body tr').count(), 1);
    assert.equal(await page.locator('#upstreams-body td').first().textContent(), 'demo');
    assert.ok((await page.locator('#series-body tr').count()) >= 2, 'echo and add have rows');
    assert.ok((await page.locator('#chart-ops polyline').count()) >= 1, 'the ops/s chart has a line');
  } finally {
    await load.stop();
  }

  // A slow upstream: the P95 alert fires and the page shows it.
  demo.state.latencyMs = 150;
  const alerts = gateway.telemetry.alerts!;
  const fired = new Promise<Alert>((resolve) => {
    const listener = (alert: Alert): void => {
      if (alert.id !== 'high_latency_p95:demo') return;
      alerts.off('firing', listener);
      resolve(alert);
    };
    alerts.on('firing', listener);
  });
  let firing = false;
  void fired.then(() => (firing = true));
  try {
    while (!firing) {
      await Promise.all(
        Array.from({ length: 5 }, (_, i) => client.callTool({ name: 'echo', arguments: { text: `slow ${i}` } })),
      );
    }
  } finally {
    demo.state.latencyMs = 0;
  }
  await fired;
  const shown = page.locator('#alerts-firing .alert[data-alert="high_latency_p95:demo"]');
  await shown.waitFor();
  assert.match((await shown.textContent()) ?? '', /high_latency_p95.*upstream 'demo': P95 latency \d+ ms/);
  assert.equal(await page.textContent('#kpi-alerts'), '1');

  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });

  // Self-contained: nothing but the page and its own feed was requested.
  assert.deepEqual([...new Set(requested.map((url) => new URL(url).pathname))].sort(), ['/', '/dashboard/events']);
  assert.ok(requested.every((url) => url.startsWith(gateway.url)));
  assert.deepEqual(problems, []);
  await page.close();
});
