import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP front in front of a fixture: it passes every request on unchanged, records the
 * headers that reached it, and can be re-pointed at another server (a server that never heard of
 * the client's session). For tests that must see the wire, never a mock.
 */
export async function startForwarder(initialTarget: string) {
  const seen: http.IncomingHttpHeaders[] = [];
  let target = new URL(initialTarget);
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    forwardRequest(req, res, target);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    retarget(url: string) {
      target = new URL(url);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Passes one request on to `target` unchanged (Host rewritten) and pipes the answer back; a failed
 * upstream connection destroys the client's response, and a client going away cancels the upstream
 * request.
 */
export function forwardRequest(req: http.IncomingMessage, res: http.ServerResponse, target: URL): void {
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      path: req.url,
      method: req.method,
      headers: { ...req.headers, host: target.host },
    },
    (response) => {
      res.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}
