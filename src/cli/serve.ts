import { loadConfigFile, resolveProxyConfig, SERVER_DEFAULTS, type ResolvedRelayConfig } from '../config/index.js';
import { demoUpstreamConfig } from '../demo/index.js';
import { createGatewayCore, startGateway, StdioInbound, type Gateway } from '../gateway/index.js';
import { RelayError, RelayErrorCode } from '../errors/index.js';

export interface ServeFlags {
  config?: string | undefined;
  host?: string | undefined;
  port?: string | undefined;
}

/** Without a config file: the bundled demo server over stdio, so the gateway runs with nothing else installed. */
export function embeddedConfig(): ResolvedRelayConfig {
  return { upstreams: [resolveProxyConfig(demoUpstreamConfig())], server: SERVER_DEFAULTS };
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `--port: expected a port number from 0 to 65535 (0 picks a free port), got '${value}'`,
    );
  }
  return port;
}

/** Starts the gateway: flags override the file, the file overrides the defaults. */
export async function startFromFlags(flags: ServeFlags): Promise<{ gateway: Gateway; config: ResolvedRelayConfig }> {
  const config = flags.config ? await loadConfigFile(flags.config) : embeddedConfig();
  const gateway = await startGateway({
    upstreams: config.upstreams,
    balance: config.balance,
    host: flags.host ?? config.server.host,
    port: flags.port !== undefined ? parsePort(flags.port) : config.server.port,
    maxBodyBytes: config.server.maxBodyBytes,
    allowedOrigins: config.server.allowedOrigins,
    namespacing: config.server.namespacing,
    pageSize: config.server.pageSize,
    sessions: config.server.sessions,
    headersTimeoutMs: config.server.headersTimeoutMs,
    requestTimeoutMs: config.server.requestTimeoutMs,
    drainDelayMs: config.server.drainDelayMs,
    drainTimeoutMs: config.server.drainTimeoutMs,
    auth: config.auth,
    tenants: config.tenants,
    redis: config.redis,
    alerts: config.alerts,
    telemetry: config.telemetry,
  });
  return { gateway, config };
}

export async function serve(flags: ServeFlags, write: (line: string) => void): Promise<void> {
  const { gateway, config } = await startFromFlags(flags);
  write(`mcp-relay gateway listening on ${gateway.url}/mcp`);
  write(`  upstreams: ${config.upstreams.map((u) => `${u.name} (${u.transport.kind})`).join(', ')}`);
  write(`  callers: ${describeAuth(config)}`);
  if (config.telemetry?.dashboard !== false)
    write(`  dashboard: ${gateway.url}/ (metrics at /metrics, alerts at /alerts)`);
  if (!flags.config)
    write('  (no --config: serving the bundled demo MCP server; try `mcp-relay serve --config relay.yaml`)');
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      write('mcp-relay: shutting down');
      void gateway.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/**
 * `mcp-relay stdio`: the gateway for clients that only spawn commands. stdout carries JSON-RPC
 * alone; the process ends when the client closes stdin.
 */
export async function serveStdio(flags: Pick<ServeFlags, 'config'>): Promise<void> {
  const config = flags.config ? await loadConfigFile(flags.config) : embeddedConfig();
  const core = await createGatewayCore({
    upstreams: config.upstreams,
    balance: config.balance,
    namespacing: config.server.namespacing,
    pageSize: config.server.pageSize,
  });
  const inbound = new StdioInbound(core, {
    input: process.stdin,
    output: process.stdout,
    maxMessageBytes: config.server.maxBodyBytes,
  });
  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await Promise.race([inbound.ended, stop]);
  inbound.close();
  await core.close();
}

/** Who may call, in one line; never a key or a secret. */
function describeAuth(config: ResolvedRelayConfig): string {
  const auth = config.auth;
  if (auth === undefined) return 'anonymous (no auth section; loopback only)';
  const ways: string[] = [];
  if (auth.apiKeys.length > 0) ways.push(`${auth.apiKeys.length} API key${auth.apiKeys.length === 1 ? '' : 's'}`);
  if (auth.jwt !== undefined) ways.push(`JWT ${auth.jwt.algorithm}`);
  if (auth.allowAnonymous) ways.push(`anonymous as tenant '${auth.anonymousTenant}'`);
  const tenants = Object.keys(config.tenants ?? {});
  return `${ways.join(', ')}${tenants.length > 0 ? `; tenants: ${tenants.join(', ')}` : ''}`;
}
