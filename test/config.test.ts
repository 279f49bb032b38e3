import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Command } from 'commander';

import { DOCS_PATH, renderConfigDocs } from '../scripts/gen-config-docs.js';
import { registerConfigCommands } from '../src/cli/config-command.js';
import {
  childProcessEnv,
  INHERITED_ENV_VARS,
  loadConfigFile,
  parseConfigText,
  parseDuration,
  relayConfigJsonSchema,
  resolveProxyConfig,
  type ParseConfigOptions,
  type ProxyConfig,
  type ResolvedUpstreamConfig,
} from '../src/config/index.js';
import { isRelayError, RelayErrorCode, type RelayError } from '../src/errors/index.js';

const execFileAsync = promisify(execFile);
const CLI = fileURLToPath(new URL('./helpers/config-cli.ts', import.meta.url));
const REPO = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Helpers

function configError(fn: () => unknown): RelayError {
  try {
    fn();
  } catch (error) {
    assert.ok(isRelayError(error, RelayErrorCode.InvalidConfig), `expected RELAY_INVALID_CONFIG, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a RelayError(RELAY_INVALID_CONFIG), but nothing was thrown');
}

/** The problem line for `field` in an error message; fails when there is none. */
function problemLine(error: RelayError, field: string): string {
  const line = error.message.split('\n').find((l) => l.trimStart().startsWith(`${field}:`));
  assert.ok(line, `no problem line for ${field} in:\n${error.message}`);
  return line;
}

/** Asserts that the problem line for `field` names the value received and the expectation. */
function assertProblem(error: RelayError, field: string, value: string, expectation: string): void {
  const line = problemLine(error, field);
  assert.ok(line.includes(`got ${value}`), `line does not show the value ${value}: ${line}`);
  assert.ok(line.includes(expectation), `line does not state "${expectation}": ${line}`);
}

function invalidProxy(input: Record<string, unknown>): RelayError {
  return configError(() => resolveProxyConfig(input as ProxyConfig));
}

function parseYaml(text: string, options: ParseConfigOptions = {}) {
  return parseConfigText(text, { format: 'yaml', source: 'relay.yaml', env: {}, ...options });
}

function invalidYaml(text: string, options: ParseConfigOptions = {}): RelayError {
  return configError(() => parseYaml(text, options));
}

/** One HTTP upstream named `u` with `fields` (YAML lines, indented under it). */
function upstreamYaml(fields: string): string {
  return `upstreams:\n  u:\n    server_url: http://127.0.0.1:4100/mcp\n${fields
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;
}

function stdioYaml(fields: string): string {
  return `upstreams:\n  u:\n    command: node\n${fields
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;
}

function only(config: { upstreams: readonly ResolvedUpstreamConfig[] }): ResolvedUpstreamConfig {
  assert.equal(config.upstreams.length, 1);
  return config.upstreams[0]!;
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-relay-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

void describe('durations', () => {
  void test('a number is seconds, as in the seed (timeout=30.0, retry_delay=0.5)', () => {
    assert.equal(parseDuration(30.0, 'timeout'), 30_000);
    assert.equal(parseDuration(0.5, 'retry_delay'), 500);
    assert.equal(parseDuration(0, 'retry_delay'), 0);
  });

  void test('a string carries a unit: 250ms, 1.5s, 5m, 2h', () => {
    assert.equal(parseDuration('250ms', 'f'), 250);
    assert.equal(parseDuration('1.5s', 'f'), 1_500);
    assert.equal(parseDuration('5m', 'f'), 300_000);
    assert.equal(parseDuration('2h', 'f'), 7_200_000);
  });

  void test('a bare numeric string is seconds', () => {
    assert.equal(parseDuration('30', 'f'), 30_000);
    assert.equal(parseDuration('0.25', 'f'), 250);
  });

  void test('milliseconds come out as integers (1.1 s is 1100, not 1100.0000000000002)', () => {
    assert.equal(parseDuration(1.1, 'f'), 1_100);
  });

  for (const [value, shown] of [
    [-1, '-1'],
    ['-5s', '"-5s"'],
  ] as const) {
    void test(`a negative duration (${shown}) fails naming the field, the value and "not negative"`, () => {
      const error = configError(() => parseDuration(value, 'upstreams.a.timeout'));
      assertProblem(error, 'upstreams.a.timeout', shown, 'not negative');
    });
  }

  for (const [value, shown] of [
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    ['abc', '"abc"'],
    [true, 'true'],
  ] as const) {
    void test(`a non-duration (${shown}) fails naming the field, the value and the accepted forms`, () => {
      const error = configError(() => parseDuration(value, 'timeout'));
      assertProblem(error, 'timeout', shown, "'250ms'");
    });
  }

  void test('an unknown unit fails naming the unit and the units that exist', () => {
    const error = configError(() => parseDuration('5d', 'cache_ttl'));
    assertProblem(error, 'cache_ttl', '"5d"', 'ms, s, m or h');
    assert.match(error.message, /unknown unit 'd'/);
  });

  void test('a timeout of 0 fails: a deadline must be at least 1 ms', () => {
    const error = invalidProxy({ serverUrl: 'http://h/mcp', timeout: 0 });
    assertProblem(error, 'timeout', '0', 'from 1 ms to');
  });

  void test('a timeout longer than a Node timer can wait fails', () => {
    const error = invalidProxy({ serverUrl: 'http://h/mcp', timeout: '600h' });
    assertProblem(error, 'timeout', '"600h"', 'to 2147483647 ms');
  });
});

void describe('defaults', () => {
  void test("an HTTP upstream gets the seed's defaults, durations in ms", () => {
    assert.deepEqual(resolveProxyConfig({ serverUrl: 'http://mcp-server:8000' }), {
      name: 'mcp-server:8000',
      transport: { kind: 'http', url: 'http://mcp-server:8000/', headers: {} },
      connectionPoolSize: 10,
      processes: 1,
      timeoutMs: 30_000,
      maxRetries: 3,
      retryDelayMs: 1_000,
      cacheSize: 100,
      cacheTtlMs: 300_000,
      enableCaching: true,
      protocol: 'auto',
      maxResponseBytes: 67_108_864,
      cacheMaxBytes: 67_108_864,
      staleTtlMs: 0,
      trustAnnotations: false,
      cache: {
        ttlMs: { tools: 300_000, resources: 300_000, prompts: 600_000, metadata: 900_000 },
        tools: [],
      },
    });
  });

  void test('a stdio upstream gets args [], env {}, 1 process, and its name from the command basename', () => {
    const resolved = resolveProxyConfig({ command: '/usr/local/bin/my-server' });
    assert.deepEqual(resolved.transport, { kind: 'stdio', command: '/usr/local/bin/my-server', args: [], env: {} });
    assert.equal(resolved.name, 'my-server');
    assert.equal(resolved.processes, 1);
  });

  void test('a config file applies the same defaults as the library', () => {
    const fromFile = only(parseYaml('upstreams:\n  mcp-server:\n    server_url: http://mcp-server:8000\n'));
    const fromLibrary = resolveProxyConfig({ serverUrl: 'http://mcp-server:8000', name: 'mcp-server' });
    assert.deepEqual(fromFile, fromLibrary);
  });

  void test("the seed's high-throughput example resolves to its values", () => {
    const resolved = resolveProxyConfig({
      serverUrl: 'http://mcp-server:8000',
      connectionPoolSize: 50,
      timeout: 30.0,
      maxRetries: 3,
      retryDelay: 0.5,
      cacheSize: 1000,
      cacheTtl: 900,
      enableCaching: true,
      headers: { 'X-Tenant-ID': 'tenant_a' },
      authToken: 'secret',
      tenant: 'tenant_a',
    });
    assert.equal(resolved.connectionPoolSize, 50);
    assert.equal(resolved.retryDelayMs, 500);
    assert.equal(resolved.cacheTtlMs, 900_000);
    assert.equal(resolved.tenant, 'tenant_a');
    assert.deepEqual(resolved.transport, {
      kind: 'http',
      url: 'http://mcp-server:8000/',
      headers: { 'X-Tenant-ID': 'tenant_a' },
      authToken: 'secret',
    });
  });

  void test('the resolved config is frozen, so no consumer can change what another sees', () => {
    const resolved = resolveProxyConfig({ command: 'node', args: ['server.js'], env: { A: '1' } });
    assert.ok(Object.isFrozen(resolved));
    assert.ok(Object.isFrozen(resolved.transport));
    assert.throws(() => {
      (resolved.transport as unknown as { args: string[] }).args.push('x');
    }, TypeError);
  });
});

void describe('upstream rules (library spelling)', () => {
  void test('serverUrl and command together fail: exactly one transport', () => {
    const error = invalidProxy({ serverUrl: 'http://h/mcp', command: 'node' });
    assert.match(problemLine(error, 'command'), /expected exactly one of serverUrl or command, got both/);
  });

  void test('neither serverUrl nor command fails', () => {
    const error = invalidProxy({ timeout: 5 });
    assert.match(problemLine(error, '(top level)'), /expected serverUrl .* or command .*, got neither/);
  });

  void test('serverUrl must be an http or https URL', () => {
    const error = invalidProxy({ serverUrl: 'ftp://files.example.com' });
    assertProblem(error, 'serverUrl', '"ftp://files.example.com"', 'expected an http:// or https:// URL');
  });

  void test('a name outside [A-Za-z0-9_.-]{1,48} fails', () => {
    const error = invalidProxy({ serverUrl: 'http://h/mcp', name: 'has space' });
    assertProblem(error, 'name', '"has space"', '1 to 48 letters');
    invalidProxy({ serverUrl: 'http://h/mcp', name: 'x'.repeat(49) });
  });

  for (const bad of [0, 10_001, 2.5]) {
    void test(`connectionPoolSize ${bad} fails: an integer from 1 to 10000`, () => {
      const error = invalidProxy({ serverUrl: 'http://h/mcp', connectionPoolSize: bad });
      assertProblem(error, 'connectionPoolSize', String(bad), 'expected an integer from 1 to 10000');
    });
  }

  void test('processes outside 1..64 fails', () => {
    assertProblem(invalidProxy({ command: 'node', processes: 65 }), 'processes', '65', 'from 1 to 64');
    assertProblem(invalidProxy({ command: 'node', processes: 0 }), 'processes', '0', 'from 1 to 64');
  });

  void test('processes on an HTTP upstream fails: it is stdio only', () => {
    const error = invalidProxy({ serverUrl: 'http://h/mcp', processes: 4 });
    assertProblem(error, 'processes', '4', 'expected no processes on an HTTP upstream');
  });

  void test('args, env and cwd on an HTTP upstream fail', () => {
    const error = invalidProxy({ serverUrl: 'http://h/mcp', args: ['x'], env: {}, cwd: '/tmp' });
    for (const key of ['args', 'env', 'cwd']) assert.match(problemLine(error, key), /on an HTTP upstream/);
  });

  void test('headers and authToken on a stdio upstream fail: they are HTTP only', () => {
    const error = invalidProxy({ command: 'node', headers: { A: 'b' }, authToken: 't' });
    assert.match(problemLine(error, 'headers'), /expected no headers on a stdio upstream/);
    assert.match(problemLine(error, 'authToken'), /expected no authToken on a stdio upstream/);
  });

  void test('maxRetries outside 0..10 fails', () => {
    assertProblem(invalidProxy({ serverUrl: 'http://h', maxRetries: 11 }), 'maxRetries', '11', 'from 0 to 10');
    assertProblem(invalidProxy({ serverUrl: 'http://h', maxRetries: -1 }), 'maxRetries', '-1', 'from 0 to 10');
  });

  void test('a negative cacheSize fails', () => {
    assertProblem(invalidProxy({ serverUrl: 'http://h', cacheSize: -1 }), 'cacheSize', '-1', 'at least 0');
  });

  void test('maxResponseBytes of 0 fails', () => {
    assertProblem(invalidProxy({ serverUrl: 'http://h', maxResponseBytes: 0 }), 'maxResponseBytes', '0', 'at least 1');
  });

  void test('enableCaching must be a boolean', () => {
    const error = invalidProxy({ serverUrl: 'http://h', enableCaching: 'yes' });
    assertProblem(error, 'enableCaching', '"yes"', 'expected true or false');
  });

  void test('protocol must be auto, modern or legacy', () => {
    const error = invalidProxy({ serverUrl: 'http://h', protocol: '2025-06-18' });
    assertProblem(error, 'protocol', '"2025-06-18"', 'expected one of "auto", "modern", "legacy"');
  });

  void test('a header name that is not an HTTP token fails', () => {
    const error = invalidProxy({ serverUrl: 'http://h', headers: { 'X Region': 'eu' } });
    assertProblem(error, 'headers["X Region"]', '"X Region"', 'HTTP token');
  });

  void test('a header the relay manages itself (Mcp-Session-Id) fails', () => {
    const error = invalidProxy({ serverUrl: 'http://h', headers: { 'Mcp-Session-Id': 'x' } });
    assertProblem(error, 'headers.Mcp-Session-Id', '"Mcp-Session-Id"', 'a header the relay does not manage');
  });

  void test('a header value with CR or LF fails (no header injection)', () => {
    const error = invalidProxy({ serverUrl: 'http://h', headers: { 'X-Region': 'eu\r\nX-Evil: 1' } });
    assertProblem(error, 'headers.X-Region', '"eu\\r\\nX-Evil: 1"', 'without CR, LF or NUL');
  });

  void test('authToken together with an Authorization header fails', () => {
    const error = invalidProxy({ serverUrl: 'http://h', authToken: 't', headers: { authorization: 'Bearer u' } });
    assert.match(problemLine(error, 'authToken'), /expected either authToken or an Authorization header, not both/);
  });

  void test('an empty tenant fails', () => {
    assertProblem(invalidProxy({ serverUrl: 'http://h', tenant: '' }), 'tenant', '""', 'expected a tenant id');
  });

  void test('an unknown key fails, suggesting the known one (snake_case in TypeScript)', () => {
    const error = invalidProxy({ serverUrl: 'http://h', connection_pool_size: 5 });
    assert.match(problemLine(error, 'connection_pool_size'), /unknown key; did you mean connectionPoolSize\?/);
  });

  void test('a config that is not an object fails', () => {
    const error = configError(() => resolveProxyConfig(42 as unknown as ProxyConfig));
    assertProblem(error, '(top level)', '42', 'expected an object');
  });
});

void describe('config files', () => {
  const yaml = `
defaults:
  timeout: 10s
  headers:
    User-Agent: mcp-relay
upstreams:
  search:
    server_url: http://mcp-server:8000/mcp
    connection_pool_size: 50
    cache_ttl: 10m
    retry_delay: 0.5
    headers:
      X-Tenant-ID: tenant_a
  files:
    command: npx
    args: [-y, "@modelcontextprotocol/server-filesystem", /srv]
    processes: 4
`;
  const json = JSON.stringify({
    defaults: { timeout: '10s', headers: { 'User-Agent': 'mcp-relay' } },
    upstreams: {
      search: {
        server_url: 'http://mcp-server:8000/mcp',
        connection_pool_size: 50,
        cache_ttl: '10m',
        retry_delay: 0.5,
        headers: { 'X-Tenant-ID': 'tenant_a' },
      },
      files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/srv'], processes: 4 },
    },
  });

  void test('YAML and JSON holding the same config resolve to the same result', () => {
    const fromYaml = parseConfigText(yaml, { format: 'yaml', env: {} });
    const fromJson = parseConfigText(json, { format: 'json', env: {} });
    assert.deepEqual(fromYaml, fromJson);
    assert.deepEqual(
      fromYaml.upstreams.map((u) => u.name),
      ['search', 'files'],
    );
    const [search, files] = fromYaml.upstreams;
    assert.equal(search?.connectionPoolSize, 50);
    assert.equal(search?.cacheTtlMs, 600_000);
    assert.equal(search?.retryDelayMs, 500);
    assert.equal(search?.timeoutMs, 10_000);
    assert.equal(files?.processes, 4);
    assert.equal(files?.timeoutMs, 10_000);
  });

  void test('format auto reads JSON when the text starts with "{" and YAML otherwise', () => {
    assert.deepEqual(parseConfigText(json, { env: {} }), parseConfigText(yaml, { env: {} }));
  });

  void test('defaults apply where the upstream is silent; HTTP-only defaults skip stdio upstreams', () => {
    const config = parseConfigText(yaml, { env: {} });
    const files = config.upstreams.find((u) => u.name === 'files');
    assert.deepEqual(files?.transport, {
      kind: 'stdio',
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-filesystem', '/srv'],
      env: {},
    });
  });

  void test("default headers merge with the upstream's, its own names winning case-insensitively", () => {
    const config = parseYaml(`
defaults:
  headers: { User-Agent: default-agent, X-Env: prod }
upstreams:
  a:
    server_url: http://a/mcp
    headers: { user-agent: own-agent }
`);
    const transport = only(config).transport;
    assert.equal(transport.kind, 'http');
    assert.deepEqual(transport.kind === 'http' ? transport.headers : {}, {
      'X-Env': 'prod',
      'user-agent': 'own-agent',
    });
  });

  void test('an Authorization header from defaults with an auth_token upstream fails', () => {
    const error = invalidYaml(`
defaults:
  headers: { Authorization: Bearer shared }
upstreams:
  a: { server_url: "http://a/mcp", auth_token: own }
`);
    assert.match(problemLine(error, 'upstreams.a.auth_token'), /either auth_token or an Authorization header/);
    assert.ok(!error.message.includes('shared'));
  });

  void test("keys inside headers and env are the user's: never case-converted", () => {
    const config = parseYaml(`
upstreams:
  web:
    server_url: http://a/mcp
    headers: { X-Tenant-ID: t, someCamelHeader: v, snake_case_header: w }
  local:
    command: node
    env: { MY_VAR: "1", camelCaseVar: "2", lower_snake: "3", cacheTtl: "4" }
`);
    const [web, local] = config.upstreams;
    assert.deepEqual(web?.transport.kind === 'http' && web.transport.headers, {
      'X-Tenant-ID': 't',
      someCamelHeader: 'v',
      snake_case_header: 'w',
    });
    assert.deepEqual(local?.transport.kind === 'stdio' && local.transport.env, {
      MY_VAR: '1',
      camelCaseVar: '2',
      lower_snake: '3',
      cacheTtl: '4',
    });
  });

  void test('unquoted YAML numbers and booleans in env and headers become strings', () => {
    const local = only(parseYaml('upstreams:\n  l:\n    command: node\n    env: { PORT: 3000, DEBUG: true }\n'));
    assert.deepEqual(local.transport.kind === 'stdio' && local.transport.env, { PORT: '3000', DEBUG: 'true' });
  });

  void test('an unknown top-level key fails (typos must not be ignored)', () => {
    const error = invalidYaml('upstream:\n  a: { command: node }\n');
    assert.match(problemLine(error, 'upstream'), /unknown key; did you mean upstreams\?/);
  });

  void test('an unknown upstream key fails with a suggestion, camelCase too', () => {
    const error = invalidYaml(stdioYaml('conection_pool_size: 5\ncacheTtl: 5'));
    assert.match(problemLine(error, 'upstreams.u.conection_pool_size'), /did you mean connection_pool_size\?/);
    assert.match(problemLine(error, 'upstreams.u.cacheTtl'), /did you mean cache_ttl\?/);
  });

  void test('a field error names the path as the file spells it, the value and the expectation', () => {
    const error = invalidYaml(upstreamYaml('connection_pool_size: 0'));
    assertProblem(error, 'upstreams.u.connection_pool_size', '0', 'expected an integer from 1 to 10000');
  });

  void test('processes on an HTTP upstream in a file fails in snake_case', () => {
    const error = invalidYaml(upstreamYaml('processes: 2'));
    assertProblem(error, 'upstreams.u.processes', '2', 'expected no processes on an HTTP upstream');
  });

  void test('an upstream with neither server_url nor command fails', () => {
    const error = invalidYaml('upstreams:\n  u: { timeout: 5 }\n');
    assert.match(problemLine(error, 'upstreams.u'), /expected server_url .* or command .*, got neither/);
  });

  void test('an invalid upstream name (map key) fails', () => {
    const error = invalidYaml('upstreams:\n  "bad name": { command: node }\n');
    assertProblem(error, 'upstreams["bad name"]', '"bad name"', 'expected an upstream name');
  });

  void test('a name used in both upstreams and mcpServers fails', () => {
    const error = invalidYaml('upstreams:\n  a: { command: node }\nmcpServers:\n  a: { command: node }\n');
    assert.match(problemLine(error, 'mcpServers.a'), /expected a name not already used under upstreams/);
  });

  void test('a file without any upstream fails', () => {
    const error = invalidYaml('defaults: { timeout: 5 }\n');
    assert.match(problemLine(error, '(top level)'), /expected at least one upstream under upstreams or mcpServers/);
  });

  void test('an empty file fails saying what the top level should be', () => {
    const error = invalidYaml('');
    assertProblem(error, '(top level)', 'null', 'expected a map of configuration sections');
  });

  void test('several problems are reported together, one per line, in document order', () => {
    const error = invalidYaml(`
upstreams:
  a:
    server_url: http://a/mcp
    timeout: -1
    max_retries: 20
  b:
    command: node
    cache_size: -5
`);
    const lines = error.message.split('\n');
    assert.match(lines[0] ?? '', /^invalid configuration in relay\.yaml \(3 problems\):$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.trim().split(':')[0]),
      ['upstreams.a.timeout', 'upstreams.a.max_retries', 'upstreams.b.cache_size'],
    );
  });

  void test('a relative cwd is resolved against the config file directory', async () => {
    const file = join(dir, 'cwd.yaml');
    await writeFile(file, 'upstreams:\n  s:\n    command: node\n    cwd: ./servers\n');
    const config = await loadConfigFile(file);
    const transport = only(config).transport;
    assert.equal(transport.kind === 'stdio' && transport.cwd, join(dir, 'servers'));
  });

  void test('a file that cannot be read fails with RELAY_INVALID_CONFIG naming the path', async () => {
    const missing = join(dir, 'missing.yaml');
    await assert.rejects(loadConfigFile(missing), (error: unknown) => {
      assert.ok(isRelayError(error, RelayErrorCode.InvalidConfig));
      assert.ok(error.message.includes(missing));
      return true;
    });
  });
});

void describe('mcpServers (the desktop-client format)', () => {
  // As Claude Desktop, Cursor, Cline and Claude Code write it: stdio and HTTP entries, client keys.
  const desktop = {
    mcpServers: {
      filesystem: {
        command: 'npx',
        args: ['-y', '@modelcontextprotocol/server-filesystem', '/Users/me/Desktop', '/Users/me/Downloads'],
      },
      github: {
        command: 'docker',
        args: ['run', '-i', '--rm', '-e', 'GITHUB_PERSONAL_ACCESS_TOKEN', 'ghcr.io/github/github-mcp-server'],
        env: { GITHUB_PERSONAL_ACCESS_TOKEN: 'ghp_example' },
      },
      linear: { type: 'http', url: 'https://mcp.linear.app/mcp', headers: { Authorization: 'Bearer lin_example' } },
      remote: { url: 'https://example.com/mcp', transport: 'streamable-http' },
      cline: { command: 'uvx', args: ['mcp-server-fetch'], disabled: false, autoApprove: ['fetch'], timeout: 60 },
      off: { command: 'uvx', args: ['mcp-server-time'], disabled: true, alwaysAllow: [] },
      local: { type: 'stdio', command: 'node', args: ['server.js'] },
    },
  };

  void test("a desktop client's mcpServers JSON loads unchanged", async () => {
    const file = join(dir, 'claude_desktop_config.json');
    await writeFile(file, JSON.stringify(desktop, null, 2));
    const config = await loadConfigFile(file, { env: {} });
    assert.deepEqual(
      config.upstreams.map((u) => u.name),
      ['filesystem', 'github', 'linear', 'remote', 'cline', 'local'],
    );
    const byName = new Map(config.upstreams.map((u) => [u.name, u]));
    assert.deepEqual(byName.get('filesystem')?.transport, {
      kind: 'stdio',
      command: 'npx',
      args: desktop.mcpServers.filesystem.args,
      env: {},
    });
    const github = byName.get('github')?.transport;
    assert.deepEqual(github?.kind === 'stdio' && github.env, { GITHUB_PERSONAL_ACCESS_TOKEN: 'ghp_example' });
    assert.deepEqual(byName.get('linear')?.transport, {
      kind: 'http',
      url: 'https://mcp.linear.app/mcp',
      headers: { Authorization: 'Bearer lin_example' },
    });
    assert.equal(byName.get('remote')?.transport.kind, 'http');
    assert.equal(byName.get('cline')?.timeoutMs, 60_000);
  });

  void test('entries marked disabled are left out, as the desktop client leaves them out', () => {
    const config = parseConfigText(JSON.stringify(desktop), { env: {} });
    assert.ok(!config.upstreams.some((u) => u.name === 'off'));
  });

  void test('mcpServers sits beside our own keys in the same file', () => {
    const config = parseYaml('defaults: { cache_size: 7 }\nmcpServers:\n  a: { command: node, max_retries: 0 }\n');
    assert.equal(only(config).cacheSize, 7);
    assert.equal(only(config).maxRetries, 0);
  });

  void test('a type that contradicts the entry (stdio with url) fails', () => {
    const error = invalidYaml('mcpServers:\n  a: { type: stdio, url: "http://a/mcp" }\n');
    assertProblem(error, 'mcpServers.a.type', '"stdio"', 'expected "http" for an entry with url');
  });

  void test('type "sse" fails: the 2024-11-05 HTTP+SSE transport is not supported', () => {
    const error = invalidYaml('mcpServers:\n  a: { type: sse, url: "http://a/sse" }\n');
    assertProblem(error, 'mcpServers.a.type', '"sse"', 'HTTP+SSE transport of 2024-11-05 is not supported');
  });

  void test('url and server_url together fail', () => {
    const error = invalidYaml('mcpServers:\n  a: { url: "http://a/mcp", server_url: "http://b/mcp" }\n');
    assert.match(problemLine(error, 'mcpServers.a.url'), /expected one of url or server_url, got both/);
  });

  void test('an mcpServers entry with only disabled servers fails as having no upstream', () => {
    const error = invalidYaml('mcpServers:\n  a: { command: node, disabled: true }\n');
    assert.match(problemLine(error, '(top level)'), /expected at least one upstream that is not disabled/);
  });
});

void describe('${ENV} substitution', () => {
  void test('${NAME} is replaced in every string value', () => {
    const config = parseYaml(
      'upstreams:\n  a:\n    server_url: "${URL}"\n    auth_token: "${TOKEN}"\n    headers: { X-Tenant-ID: "t-${TENANT}" }\n',
      { env: { URL: 'https://a.example/mcp', TOKEN: 'tok', TENANT: '42' } },
    );
    assert.deepEqual(only(config).transport, {
      kind: 'http',
      url: 'https://a.example/mcp',
      headers: { 'X-Tenant-ID': 't-42' },
      authToken: 'tok',
    });
  });

  void test('${NAME:-default} uses the default when the variable is unset or empty', () => {
    const yaml = 'upstreams:\n  a:\n    command: "${CMD:-node}"\n    args: ["${ARG:-server.js}"]\n';
    const unset = only(parseYaml(yaml, { env: {} })).transport;
    assert.deepEqual(unset.kind === 'stdio' && [unset.command, ...unset.args], ['node', 'server.js']);
    const empty = only(parseYaml(yaml, { env: { CMD: '', ARG: 'x.js' } })).transport;
    assert.deepEqual(empty.kind === 'stdio' && [empty.command, ...empty.args], ['node', 'x.js']);
  });

  void test('$$ is a literal dollar sign', () => {
    const config = parseYaml('upstreams:\n  a:\n    command: node\n    env: { PRICE: "$$5 and $${HOME}" }\n');
    const transport = only(config).transport;
    assert.deepEqual(transport.kind === 'stdio' && transport.env, { PRICE: '$5 and ${HOME}' });
  });

  void test('an unset variable without a default fails naming the variable and the field path', () => {
    const error = invalidYaml('upstreams:\n  a:\n    server_url: http://a/mcp\n    auth_token: "${MCP_PROD_TOKEN}"\n');
    const line = problemLine(error, 'upstreams.a.auth_token');
    assert.match(line, /expected environment variable MCP_PROD_TOKEN to be set/);
  });

  void test('a substituted value in a number or boolean field is read as a number or boolean', () => {
    const config = parseYaml(stdioYaml('connection_pool_size: "${POOL:-25}"\nenable_caching: "${CACHE}"'), {
      env: { CACHE: 'false' },
    });
    assert.equal(only(config).connectionPoolSize, 25);
    assert.equal(only(config).enableCaching, false);
  });

  void test('an invalid substituted value is reported with the template it came from', () => {
    const error = invalidYaml(stdioYaml('connection_pool_size: "${POOL}"'), { env: { POOL: 'lots' } });
    const line = problemLine(error, 'upstreams.u.connection_pool_size');
    assert.ok(line.includes('got "lots" (from "${POOL}")'), line);
  });

  void test('a malformed reference fails', () => {
    const error = invalidYaml(stdioYaml('cwd: "${not valid}"'));
    assert.match(problemLine(error, 'upstreams.u.cwd'), /expected \$\{NAME\} or \$\{NAME:-default\}/);
  });
});

void describe('secrets in error messages', () => {
  void test('an invalid auth_token is shown as [redacted]', () => {
    const error = invalidYaml(upstreamYaml('auth_token: 12345678'));
    assertProblem(error, 'upstreams.u.auth_token', '[redacted]', 'expected a token');
    assert.ok(!error.message.includes('12345678'));
  });

  void test('an invalid Authorization header value is shown as [redacted]', () => {
    const error = invalidYaml(upstreamYaml('headers:\n  Authorization: "Bearer sk-live-123\\r\\nX: y"'));
    assertProblem(error, 'upstreams.u.headers.Authorization', '[redacted]', 'without CR, LF or NUL');
    assert.ok(!error.message.includes('sk-live-123'));
  });

  void test('env values named like secrets are redacted, in the library spelling too', () => {
    const error = invalidProxy({ command: 'node', env: { GITHUB_TOKEN: 'ghp_secret\0' }, authToken: 'x' });
    assertProblem(error, 'env.GITHUB_TOKEN', '[redacted]', 'without CR, LF or NUL');
    assert.ok(!error.message.includes('ghp_secret'));
  });

  void test('a password inside a URL is redacted', () => {
    const error = invalidYaml('upstreams:\n  u: { server_url: "ftp://admin:hunter2@files.example.com/?api_key=k9" }\n');
    const line = problemLine(error, 'upstreams.u.server_url');
    assert.ok(!line.includes('hunter2') && !line.includes('k9'), line);
    assert.ok(line.includes('expected an http:// or https:// URL'), line);
  });

  void test("an upstream named like a secret (token-service) still shows its fields' values", () => {
    const error = invalidYaml('upstreams:\n  token-service: { command: node, cache_size: -3 }\n');
    assertProblem(error, 'upstreams.token-service.cache_size', '-3', 'at least 0');
  });

  void test('a substituted secret is not echoed with its template', () => {
    const error = invalidYaml(upstreamYaml('auth_token: "${T}"\nheaders: { X-Api-Key: "${K}\\n" }'), {
      env: { T: '', K: 'key-material' },
    });
    assert.ok(!error.message.includes('key-material'), error.message);
  });
});

void describe('syntax errors', () => {
  void test('invalid YAML reports the line and column', () => {
    const error = invalidYaml('upstreams:\n  a:\n    command: node\n   args: [1\n');
    assert.match(error.message, /relay\.yaml is not valid YAML/);
    assert.match(error.message, /line \d+, column \d+: /);
  });

  void test('a YAML duplicate key reports its line and column', () => {
    const error = invalidYaml('upstreams:\n  a: { command: node }\n  a: { command: deno }\n');
    assert.match(error.message, /line 3, column 3: Map keys must be unique/);
  });

  void test('invalid JSON reports the line and column', () => {
    const error = configError(() =>
      parseConfigText('{\n  "upstreams": {\n    "a": { "command": "node", }\n  }\n}', {
        format: 'json',
        source: 'c.json',
      }),
    );
    assert.match(error.message, /c\.json is not valid JSON/);
    assert.match(error.message, /line 3, column 31: expected a key in double quotes, got "}"/);
  });

  void test('a JSON duplicate key (two servers of one name) fails instead of keeping the last', () => {
    const text = '{"mcpServers": {"a": {"command": "x"},\n "a": {"command": "y"}}}';
    const error = configError(() => parseConfigText(text, { format: 'json' }));
    assert.match(error.message, /line 2, column 2: duplicate key "a"/);
  });
});

void describe('the stdio child environment', () => {
  void test('a child inherits only the minimal variables, then its env', () => {
    const key = INHERITED_ENV_VARS[0]!;
    const env = childProcessEnv({ A: '1', [key]: 'override' }, { [key]: 'parent', RELAY_SECRET: 's' });
    assert.deepEqual(env, { [key]: 'override', A: '1' });
    assert.equal(childProcessEnv({}, { RELAY_SECRET: 's' }).RELAY_SECRET, undefined);
  });
});

void describe('JSON Schema and docs', () => {
  void test('the JSON Schema is valid JSON describing the top-level sections', () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- walking untyped JSON
    const schema = JSON.parse(JSON.stringify(relayConfigJsonSchema())) as Record<string, any>;
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(schema.type, 'object');
    assert.equal(schema.additionalProperties, false);
    for (const key of ['upstreams', 'mcpServers', 'defaults']) assert.ok(schema.properties[key], key);
    const upstream = schema.properties.upstreams.additionalProperties;
    assert.equal(upstream.properties.connection_pool_size.default, 10);
    assert.equal(upstream.properties.connection_pool_size.maximum, 10_000);
    assert.equal(upstream.properties.timeout.default, 30);
    assert.equal(upstream.additionalProperties, false);
    assert.equal(upstream.properties.unit, undefined);
  });

  void test('docs/config.md is what the schema generates (run npm run docs:config)', async () => {
    assert.equal(await readFile(DOCS_PATH, 'utf8'), await renderConfigDocs());
  });
});

void describe('config CLI', () => {
  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, ['--import', 'tsx', CLI, ...args], {
        cwd: REPO,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  }

  void test('config validate prints "ok: N upstreams (names)" and exits 0 for a valid file', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(
      file,
      'upstreams:\n  search: { server_url: "http://a/mcp" }\nmcpServers:\n  fs: { command: npx }\n',
    );
    const result = await cli('config', 'validate', file);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'ok: 2 upstreams (search, fs)\n');
  });

  void test('config validate prints every problem to stderr and exits 1 for an invalid file', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      'upstreams:\n  search: { server_url: "http://a/mcp", connection_pool_size: 0, timeout: -1 }\n',
    );
    const result = await cli('config', 'validate', file);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /upstreams\.search\.connection_pool_size: expected an integer from 1 to 10000, got 0/);
    assert.match(result.stderr, /upstreams\.search\.timeout: expected a duration that is not negative/);
  });

  void test('config schema prints the JSON Schema as JSON', async () => {
    const result = await cli('config', 'schema');
    assert.equal(result.code, 0, result.stderr);
    const schema = JSON.parse(result.stdout) as { properties: Record<string, unknown> };
    assert.deepEqual(Object.keys(schema.properties), [
      '$schema',
      'defaults',
      'upstreams',
      'server',
      'auth',
      'tenants',
      'balance',
      'alerts',
      'telemetry',
      'redis',
      'mcpServers',
    ]);
  });

  void test("output goes through the program's configureOutput writers", async () => {
    let out = '';
    const program = new Command().configureOutput({ writeOut: (text) => (out += text), writeErr: () => {} });
    registerConfigCommands(program);
    await program.parseAsync(['config', 'schema'], { from: 'user' });
    assert.deepEqual(JSON.parse(out), relayConfigJsonSchema());
  });
});

describe('server section', () => {
  test('defaults: 127.0.0.1:8080, 4 MiB bodies, names prefixed on collision', () => {
    const config = parseConfigText('upstreams:\n  a:\n    server_url: http://127.0.0.1:9000/mcp\n');
    assert.deepEqual(config.server, {
      host: '127.0.0.1',
      port: 8080,
      maxBodyBytes: 4 * 1024 * 1024,
      allowedOrigins: [],
      namespacing: 'on_collision',
      pageSize: 500,
      sessions: { maxAgeMs: 24 * 3_600_000, idleMs: 30 * 60_000 },
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      drainDelayMs: 0,
      drainTimeoutMs: 10_000,
    });
  });

  test('server.drain_delay and drain_timeout: durations in ms; a negative one names field, value and range', () => {
    const config = parseConfigText(
      'server:\n  drain_delay: 5s\n  drain_timeout: 30\nupstreams:\n  a:\n    server_url: http://127.0.0.1:9000/mcp\n',
    );
    assert.equal(config.server.drainDelayMs, 5000);
    assert.equal(config.server.drainTimeoutMs, 30_000);
    assert.throws(
      () =>
        parseConfigText('server:\n  drain_delay: -1\nupstreams:\n  a:\n    server_url: http://127.0.0.1:9000/mcp\n'),
      /server\.drain_delay.*-1/s,
    );
  });

  test('server.headers_timeout and request_timeout: durations in ms; a bad one names field, value and range', () => {
    const config = parseConfigText(
      'server:\n  headers_timeout: 2s\n  request_timeout: 45\nupstreams:\n  a:\n    server_url: http://127.0.0.1:9000/mcp\n',
    );
    assert.equal(config.server.headersTimeoutMs, 2000);
    assert.equal(config.server.requestTimeoutMs, 45_000);
    const error = configError(() =>
      parseConfigText(
        'server:\n  headers_timeout: 10ms\nupstreams:\n  a:\n    server_url: http://127.0.0.1:9000/mcp\n',
      ),
    );
    assert.match(error.message, /server\.headers_timeout: expected a duration from 100 ms to .*, got "10ms"/);
  });

  test('server.sessions: the secret from ${ENV}, durations in ms', () => {
    const secret = 'a-session-secret-of-more-than-32-chars';
    const config = parseConfigText(
      'server:\n  sessions:\n    secret: ${SESSION_SECRET}\n    max_age: 2h\n    idle_timeout: 90\n' +
        'upstreams:\n  a:\n    server_url: http://127.0.0.1:9000/mcp\n',
      { env: { SESSION_SECRET: secret } },
    );
    assert.deepEqual(config.server.sessions, {
      secret,
      maxAgeMs: 7_200_000,
      idleMs: 90_000,
    });
  });

  test('a short session secret fails naming the field and the minimum, never the value', () => {
    assert.throws(
      () =>
        parseConfigText(
          'server:\n  sessions:\n    secret: hunter2\nupstreams:\n  a:\n    server_url: http://127.0.0.1:9000/mcp\n',
        ),
      (error: unknown) => {
        const message = (error as Error).message;
        assert.match(message, /server\.sessions\.secret: expected a secret of at least 32 characters/);
        assert.doesNotMatch(message, /hunter2/);
        return true;
      },
    );
  });

  test('a port out of range fails naming the field, the value and the range', () => {
    assert.throws(
      () => parseConfigText('server:\n  port: 70000\nupstreams:\n  a:\n    server_url: http://127.0.0.1:9000/mcp\n'),
      (error: unknown) => {
        const message = (error as Error).message;
        assert.match(message, /server\.port/);
        assert.match(message, /70000/);
        assert.match(message, /0 to 65535/);
        return true;
      },
    );
  });

  test('an unknown namespacing mode fails with the allowed values', () => {
    assert.throws(
      () =>
        parseConfigText(
          'server:\n  namespacing: sometimes\nupstreams:\n  a:\n    server_url: http://127.0.0.1:9000/mcp\n',
        ),
      /server\.namespacing[\s\S]*on_collision/,
    );
  });
});

void describe('cache settings', () => {
  void test("per-category TTLs: cache.ttl wins over cache_ttl, which wins over the seed's defaults", () => {
    const seed = resolveProxyConfig({ serverUrl: 'http://h/mcp' });
    assert.deepEqual(seed.cache.ttlMs, { tools: 300_000, resources: 300_000, prompts: 600_000, metadata: 900_000 });
    const global = resolveProxyConfig({ serverUrl: 'http://h/mcp', cacheTtl: '2m', cache: { ttl: { prompts: 5 } } });
    assert.deepEqual(global.cache.ttlMs, { tools: 120_000, resources: 120_000, prompts: 5000, metadata: 120_000 });
  });

  void test('cache.tools takes names, globs and { name, ttl }, or "*"; cache.redis gets its defaults', () => {
    const resolved = only(
      parseYaml(
        upstreamYaml(
          'cache_max_bytes: 1048576\nstale_ttl: 30s\ntrust_annotations: true\ncache:\n  tools: [search, "get_*", { name: slow, ttl: 1m }]\n  redis: { url: "redis://127.0.0.1:6379" }',
        ),
      ),
    );
    assert.equal(resolved.cacheMaxBytes, 1_048_576);
    assert.equal(resolved.staleTtlMs, 30_000);
    assert.equal(resolved.trustAnnotations, true);
    assert.deepEqual(resolved.cache.tools, [{ name: 'search' }, { name: 'get_*' }, { name: 'slow', ttlMs: 60_000 }]);
    assert.deepEqual(resolved.cache.redis, {
      url: 'redis://127.0.0.1:6379',
      prefix: 'mcp-relay:cache:',
      timeoutMs: 250,
    });
    assert.equal(resolveProxyConfig({ serverUrl: 'http://h/mcp', cache: { tools: '*' } }).cache.tools, '*');
  });

  void test('defaults.cache merges key by key, the upstream’s own keys winning', () => {
    const resolved = only(
      parseYaml(
        'defaults:\n  cache:\n    ttl: { tools: 5, prompts: 6 }\n    redis: { url: "redis://r:6379" }\nupstreams:\n  u:\n    server_url: http://h/mcp\n    cache:\n      ttl: { prompts: 7 }\n      tools: [add]\n',
      ),
    );
    assert.equal(resolved.cache.ttlMs.tools, 5000);
    assert.equal(resolved.cache.ttlMs.prompts, 7000);
    assert.deepEqual(resolved.cache.tools, [{ name: 'add' }]);
    assert.equal(resolved.cache.redis?.url, 'redis://r:6379');
  });

  void test('bad cache values fail naming the field, the value and what was expected', () => {
    const error = invalidYaml(
      upstreamYaml(
        'cache_max_bytes: -1\nstale_ttl: soon\ncache:\n  tools: [""]\n  redis: { url: "http://r:6379" }\n  ttl: { everything: 5 }',
      ),
    );
    assertProblem(error, 'upstreams.u.cache_max_bytes', '-1', 'expected an integer of at least 0');
    assertProblem(error, 'upstreams.u.stale_ttl', '"soon"', 'expected');
    assertProblem(error, 'upstreams.u.cache.redis.url', '"http://r:6379"', 'expected a redis:// or rediss:// URL');
    assert.match(error.message, /upstreams\.u\.cache\.tools/);
    assert.match(error.message, /upstreams\.u\.cache\.ttl/);
  });
});

void describe('redis sections', () => {
  void test('redis and cache.redis take one server (url) or a Redis Cluster (cluster), with their own prefixes', () => {
    const resolved = parseYaml(
      'redis: { cluster: [redis://a:7000, redis://b:7001], timeout: 100ms }\n' +
        upstreamYaml('cache:\n  redis: { url: redis://r:6379 }'),
    );
    assert.deepEqual(resolved.redis, {
      cluster: ['redis://a:7000', 'redis://b:7001'],
      prefix: 'mcp-relay:gateway:',
      timeoutMs: 100,
    });
    assert.deepEqual(resolved.upstreams[0]!.cache.redis, {
      url: 'redis://r:6379',
      prefix: 'mcp-relay:cache:',
      timeoutMs: 250,
    });
  });

  void test('both url and cluster, neither, mixed schemes or a database number fail naming the field', () => {
    let error = invalidYaml('redis: { url: redis://r:6379, cluster: [redis://a:7000] }\n' + upstreamYaml(''));
    assert.match(problemLine(error, 'redis.cluster'), /expected either url \(one Redis server\) or cluster/);
    error = invalidYaml('redis: { prefix: p }\n' + upstreamYaml(''));
    assert.match(problemLine(error, 'redis'), /expected url \(one Redis server\) or cluster/);
    error = invalidYaml(upstreamYaml('cache:\n  redis: { cluster: [redis://a:7000, rediss://b:7001/2] }'));
    assert.match(problemLine(error, 'upstreams.u.cache.redis.cluster'), /same scheme/);
    assert.match(problemLine(error, 'upstreams.u.cache.redis.cluster[1]'), /database 0 only/);
    error = invalidYaml(upstreamYaml('cache:\n  redis: { cluster: [] }'));
    assert.match(problemLine(error, 'upstreams.u.cache.redis.cluster'), /expected a list of redis:\/\/ or rediss:\/\//);
  });
});
