/**
 * mcp-relay: a fast, correct proxy for the Model Context Protocol.
 *
 * The library face: `createProxyFactory(config)` puts a pooled, resilient connection in front of
 * one MCP server, with proxies for its tools, resources and prompts (the seed's API, typed).
 */
export * from './proxy/index.js';
export { RelayError, RelayErrorCode, isRelayError, type RelayErrorOptions } from './errors/index.js';
export type { ProgressUpdate, UpstreamInfo, ProtocolPreference } from './upstream/index.js';
export { resolveProxyConfig, type ProxyConfig, type ResolvedUpstreamConfig } from './config/index.js';
