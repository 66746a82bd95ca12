// Child process: the thinnest pass-through proxy we could write in Node — node:http in, an
// undici Pool out, no framework, no routing, no auth lookup. It only swaps the client's key for
// the provider key and drops hop-by-hop headers, streams the request body and the response
// through, and aborts upstream when the client goes away. It is the limit a Node proxy reaches
// on this machine.
//
// BENCH_FORWARDER_LEAN=1: the leanest floor (issue 28) — it holds the (small) request body and
// sends it as a Buffer, pipes the answer with pipe() (no stream.pipeline), and makes no
// AbortController per call (an EventEmitter signal, as Maestro's ClientGone): the same choices
// Maestro's hot path makes, minus everything Maestro does on top.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { pipeline } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { serve } from './lib/ipc.js';
import { profileStart, profileStop } from './lib/profiler.js';

const upstream = process.env.BENCH_UPSTREAM_URL!;
const key = process.env.BENCH_UPSTREAM_KEY!;
const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 });
const HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'host',
]);

const lean = process.env.BENCH_FORWARDER_LEAN === '1';

function headersOf(req: http.IncomingMessage): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const name in req.headers) {
    if (!HOP.has(name) && name !== 'authorization') headers[name] = req.headers[name]!;
  }
  headers['x-api-key'] = key;
  return headers;
}

function answer(res: http.ServerResponse, sent: Promise<Dispatcher.ResponseData>, relay: (body: Dispatcher.ResponseData['body']) => void) {
  sent
    .then(({ statusCode, headers: upstreamHeaders, body }) => {
      const out: Record<string, string | string[]> = {};
      for (const name in upstreamHeaders) if (!HOP.has(name)) out[name] = upstreamHeaders[name]!;
      res.writeHead(statusCode, out);
      relay(body);
    })
    .catch((error: Error) => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: error.message }));
    });
}

const streaming = (req: http.IncomingMessage, res: http.ServerResponse) => {
  const headers = headersOf(req);
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  const sent = pool.request({
    path: req.url!,
    method: req.method as Dispatcher.HttpMethod,
    headers,
    body: hasBody ? req : undefined,
    signal: abort.signal,
  });
  answer(res, sent, (body) => pipeline(body, res, () => {}));
};

const leanest = (req: http.IncomingMessage, res: http.ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const headers = headersOf(req);
    const body = chunks.length ? Buffer.concat(chunks) : undefined;
    if (body) headers['content-length'] = String(body.length);
    delete headers['transfer-encoding'];
    const gone = new EventEmitter();
    res.once('close', () => {
      if (!res.writableFinished) gone.emit('abort');
    });
    const sent = pool.request({ path: req.url!, method: req.method as Dispatcher.HttpMethod, headers, body, signal: gone });
    answer(res, sent, (upstreamBody) => {
      upstreamBody.once('error', () => res.destroy());
      upstreamBody.pipe(res);
    });
  });
};

const server = http.createServer(lean ? leanest : streaming);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  serve(
    {
      profileStart,
      profileStop,
      usage: () => ({ rss: process.memoryUsage().rss, cpu: process.cpuUsage() }),
      shutdown: () => {
        setImmediate(() => process.exit(0));
        return true;
      },
    },
    { url: `http://127.0.0.1:${port}` },
  );
});
