/**
 * HTTP fuzzing, 2025 shard: sessionful requests naming the live session, an unknown one or none,
 * with 2025 version headers (or none) and near-valid bodies, initialize and client responses
 * among them. See helpers/fuzz-http.ts for the checks.
 */
import fc from 'fast-check';

import {
  authorization,
  bodies,
  fuzzHttp,
  header,
  headersOf,
  headerText,
  LIVE_SESSION,
  usually,
} from './helpers/fuzz-http.js';

fuzzHttp(
  '2025 sessions',
  fc
    .record({
      message: bodies,
      version: usually('2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'),
      session: fc.oneof(
        { weight: 6, arbitrary: fc.constant(LIVE_SESSION) },
        { weight: 1, arbitrary: fc.oneof(fc.constantFrom('not-a-session', ''), headerText) },
        { weight: 2, arbitrary: fc.constant(undefined) },
      ),
      accept: usually('application/json, text/event-stream', 'application/json', 'text/event-stream'),
      authorization,
      extra: header('tools/call', 'ping'),
    })
    .map((c) => ({
      method: 'POST',
      path: '/mcp',
      headers: headersOf({
        'content-type': 'application/json',
        accept: c.accept,
        'mcp-protocol-version': c.version,
        'mcp-session-id': c.session,
        authorization: c.authorization,
        'mcp-method': c.extra,
      }),
      body: c.message.text,
    })),
);
