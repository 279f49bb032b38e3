/**
 * The config layer's public face: the schema (single source of defaults, units, docs and the JSON
 * Schema), durations, and loading of YAML/JSON files. Other layers import from here only.
 */
export {
  DURATION_EXPECTATION,
  DURATION_PATTERN,
  MAX_TIMER_MS,
  duration,
  durationSchema,
  parseDuration,
  type DurationBounds,
  type DurationInput,
} from './duration.js';
export {
  CLIENT_TRANSPORT_TYPES,
  INHERITED_ENV_VARS,
  RESERVED_HEADERS,
  UPSTREAM_DEFAULTS,
  UPSTREAM_FILE_KEYS,
  UPSTREAM_NAME_PATTERN,
  UPSTREAM_PROTOCOLS,
  childProcessEnv,
  deriveUpstreamName,
  fileUpstreamSchema,
  mcpServerEntrySchema,
  proxyConfigSchema,
  relayConfigFileSchema,
  relayConfigFileShape,
  relayConfigJsonSchema,
  upstreamShape,
  type FieldMeta,
  type FieldTransport,
  type HttpProxyConfig,
  type HttpTransportConfig,
  type ProxyConfig,
  type RelayConfigFile,
  type ResolvedRelayConfig,
  type ResolvedUpstreamConfig,
  type StdioProxyConfig,
  type StdioTransportConfig,
  type UpstreamProtocol,
  type UpstreamTransportConfig,
} from './schema.js';
export {
  loadConfigFile,
  parseConfigText,
  resolveProxyConfig,
  type ConfigFormat,
  type LoadConfigOptions,
  type ParseConfigOptions,
} from './load.js';
