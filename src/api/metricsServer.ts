// /metrics on its own port (MAESTRO_METRICS_PORT), bound to the same HOST as the API: a scraper
// reaches it while the public listener does not serve it. Nothing else is served here, and like the
// API's /metrics it needs no key, so keep the port to the scraper's network.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import { HttpError } from '../errors.js';
import { sendError } from './errors.js';

export interface MetricsServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(registry: Registry, opts: { host: string; port: number; log: Logger }): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      return sendError(opts.log, new HttpError(404, 'not_found', `no route for ${req.method} ${path.slice(0, 200)}`), req, res);
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (error: unknown) => sendError(opts.log, error, req, res), // PostgreSQL down: 503 + Retry-After, as on the API port
    );
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`MAESTRO_METRICS_PORT ${opts.port} is already in use; set MAESTRO_METRICS_PORT to another port`)
          : error,
      ),
    );
    server.listen(opts.port, opts.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  opts.log.info({ host: opts.host, port }, 'metrics listening on their own port');
  return {
    server,
    url: `http://localhost:${port}`,
    close: async () => {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
