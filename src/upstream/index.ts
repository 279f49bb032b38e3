import { HttpUpstream } from './http.js';
import { StdioUpstream } from './stdio-pool.js';
import type { Upstream, UpstreamOptions } from './types.js';

export { HttpUpstream, parseRetryAfter } from './http.js';
export { StdioUpstream } from './stdio-pool.js';
export { Admission } from './admission.js';
export { DEFAULT_CLIENT_INFO } from './jsonrpc.js';
export * from './types.js';

/** One connection to one MCP server, over Streamable HTTP or stdio as its transport says. */
export function createUpstream(options: UpstreamOptions): Upstream {
  return options.transport.kind === 'http' ? new HttpUpstream(options) : new StdioUpstream(options);
}
