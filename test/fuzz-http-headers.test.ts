/**
 * HTTP fuzzing, headers and methods shard: any HTTP method on any /mcp path, with random
 * Content-Type, Accept, protocol version, session, Mcp-Method, Mcp-Name, Authorization and Origin
 * around near-valid bodies. See helpers/fuzz-http.ts for the checks.
 */
import fc from 'fast-check';

import {
  authorization,
  bodies,
  echoHeader,
  fuzzHttp,
  header,
  headersOf,
  headerText,
  LIVE_SESSION,
  METHOD_HEADERS,
  origin,
} from './helpers/fuzz-http.js';
import { MODERN } from './helpers/fuzz.js';

fuzzHttp(
  'headers and methods',
  bodies.chain((message) =>
    fc
      .record({
        method: fc.oneof(
          { weight: 6, arbitrary: fc.constant('POST') },
          { weight: 1, arbitrary: fc.constantFrom('GET', 'DELETE', 'PUT', 'PATCH', 'OPTIONS') },
        ),
        path: fc.oneof(
          { weight: 4, arbitrary: fc.constant('/mcp') },
          {
            weight: 1,
            arbitrary: fc.constantFrom('/mcp/', '/mcp/local', '/mcp/nope', '/mcp/%ZZ', '/mcp/%E0%A4%A', '/mcp?x=%'),
          },
        ),
        contentType: header(
          'application/json',
          'application/json; charset=utf-8',
          'APPLICATION/JSON',
          'text/plain',
          '',
        ),
        accept: header(
          'application/json, text/event-stream',
          'application/json',
          'text/event-stream',
          '*/*',
          'text/html',
        ),
        version: header(MODERN, '2025-11-25', '2025-06-18', '2024-11-05'),
        session: fc.oneof(fc.constant(LIVE_SESSION), header('not-a-session', ''), headerText),
        mcpMethod: echoHeader(message.method, ...METHOD_HEADERS),
        mcpName: echoHeader(message.name, 'echo', 'nope'),
        authorization,
        origin,
      })
      .map((c) => ({
        method: c.method,
        path: c.path,
        headers: headersOf({
          'content-type': c.contentType,
          accept: c.accept,
          'mcp-protocol-version': c.version,
          // A GET or DELETE on the live session would open an endless stream or end it for the others.
          'mcp-session-id':
            c.session === LIVE_SESSION && (c.method === 'GET' || c.method === 'DELETE') ? 'gone' : c.session,
          'mcp-method': c.mcpMethod,
          'mcp-name': c.mcpName,
          authorization: c.authorization,
          origin: c.origin,
        }),
        body: c.method === 'POST' || c.method === 'PUT' || c.method === 'PATCH' ? message.text : undefined,
      })),
  ),
);
