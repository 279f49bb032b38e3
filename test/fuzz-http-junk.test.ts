/**
 * HTTP fuzzing, junk shard: bodies that are not JSON-RPC at all (invalid JSON, any JSON value,
 * unicode, lone surrogates, batches) under the headers of either revision. See
 * helpers/fuzz-http.ts for the checks.
 */
import fc from 'fast-check';

import { authorization, fuzzHttp, headersOf, junkBodies, LIVE_SESSION, METHOD_HEADERS } from './helpers/fuzz-http.js';
import { MODERN } from './helpers/fuzz.js';

fuzzHttp(
  'junk bodies',
  fc
    .record({
      message: junkBodies,
      modern: fc.boolean(),
      method: fc.constantFrom(...METHOD_HEADERS),
      authorization,
    })
    .map((c) => ({
      method: 'POST',
      path: '/mcp',
      headers: headersOf(
        c.modern
          ? {
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
              'mcp-protocol-version': MODERN,
              'mcp-method': c.method,
              authorization: c.authorization,
            }
          : {
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
              'mcp-protocol-version': '2025-11-25',
              'mcp-session-id': LIVE_SESSION,
              authorization: c.authorization,
            },
      ),
      body: c.message.text,
    })),
);
