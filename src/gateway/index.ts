export { startGateway, type Gateway, type GatewayOptions } from './server.js';
export { GatewayCore, type RequestContext, MODERN_VERSION, LEGACY_VERSIONS } from './core.js';
export { Catalog, namespaced, MAX_NAME_LENGTH, type GatewayUpstream, type Namespacing } from './catalog.js';
export { RpcError, RpcCode, toRpcError } from './rpc.js';
