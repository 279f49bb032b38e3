export { createGatewayCore, startGateway, type Gateway, type GatewayOptions } from './server.js';
export { StdioInbound, type StdioInboundOptions } from './stdio.js';
export {
  GatewayCore,
  type AccessPolicy,
  type Caller,
  type RequestContext,
  MODERN_VERSION,
  LEGACY_VERSIONS,
} from './core.js';
export { Catalog, namespaced, MAX_NAME_LENGTH, type GatewayUpstream, type Namespacing } from './catalog.js';
export { RpcError, RpcCode, toRpcError } from './rpc.js';
export {
  ANONYMOUS_IDENTITY,
  checkExposure,
  createAuthenticator,
  isLoopbackHost,
  type Authenticator,
  type AuthenticatorOptions,
} from './auth.js';
export { TenantPolicy, compileToolRule, type TenantPolicyOptions } from './tenants.js';
export {
  GlobalRateLimiter,
  RATE_LIMIT_CHANNEL,
  type GlobalRateLimiterOptions,
  type RateLimitStateEvent,
} from './rate-limit.js';
export {
  SessionSeal,
  sessionChannels,
  type SealedSession,
  type SessionAdoptedEvent,
  type SessionRefusedEvent,
  type SessionSealOptions,
} from './sessions.js';
export { SessionTombstones, type SessionTombstonesOptions } from './session-tombstones.js';
