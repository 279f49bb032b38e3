/**
 * HTTP fuzzing, 2026-07-28 shard: stateless requests with the version header, near-valid bodies
 * (envelopes in `_meta` right, wrong or missing) and Mcp-Method / Mcp-Name / Mcp-Param-* headers
 * that agree with the body, disagree or are missing. See helpers/fuzz-http.ts for the checks.
 */
import fc from 'fast-check';

import {
  authorization,
  bodies,
  echoHeader,
  fuzzHttp,
  header,
  headersOf,
  METHOD_HEADERS,
  usually,
} from './helpers/fuzz-http.js';
import { MODERN } from './helpers/fuzz.js';

fuzzHttp(
  '2026-07-28',
  bodies.chain((message) =>
    fc
      .record({
        version: usually(MODERN, '2025-11-25', '2026-07-29'),
        method: echoHeader(message.method, ...METHOD_HEADERS),
        name: echoHeader(message.name, 'echo', 'add', 'nope'),
        param: header('hi', '1', 'true'),
        accept: usually('application/json, text/event-stream', 'application/json', 'text/event-stream', '*/*'),
        authorization,
      })
      .map((h) => ({
        method: 'POST',
        path: '/mcp',
        headers: headersOf({
          'content-type': 'application/json',
          accept: h.accept,
          'mcp-protocol-version': h.version,
          'mcp-method': h.method,
          'mcp-name': h.name,
          'mcp-param-text': h.param,
          authorization: h.authorization,
        }),
        body: message.text,
      })),
  ),
);
