// Child process: the fake provider for bench:proxy. A bare node:http keep-alive server answering
// POST /v1/messages like Anthropic would: a ~1 KB JSON message, or (with "stream": true in the
// body) 64 server-sent events 20 ms apart. It checks that the request carries the provider key
// (x-api-key) and the anthropic-version header and no Maestro key or x-maestro-* header, so a
// case that forwards wrongly fails loudly instead of looking fast. Unlike test/support's fake it
// records nothing per request (no memory growth over a few hundred thousand requests).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from './lib/ipc.js';

const API_KEY = process.env.BENCH_UPSTREAM_KEY ?? 'sk-ant-api03-benchUpstreamKey0123456789';
/** An OAuth access token the upstream also accepts (Authorization: Bearer + the oauth beta). */
const ACCESS_TOKEN = process.env.BENCH_UPSTREAM_TOKEN ?? 'sk-ant-oat01-benchUpstreamToken0123456789';
const EVENTS = Number(process.env.BENCH_EVENTS ?? 64);
const EVENT_INTERVAL_MS = Number(process.env.BENCH_EVENT_INTERVAL_MS ?? 20);

const text = 'Hello from the benchmark upstream. '.repeat(24).trim();
const MESSAGE = Buffer.from(
  JSON.stringify({
    id: 'msg_bench0123456789abcdef',
    type: 'message',
    role: 'assistant',
    model: 'claude-bench',
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 12, output_tokens: 200, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  }),
);
const MESSAGE_HEADERS = {
  'content-type': 'application/json',
  'content-length': String(MESSAGE.length),
  'request-id': 'req_bench0123456789',
  'anthropic-ratelimit-requests-remaining': '4999',
  'anthropic-ratelimit-tokens-remaining': '399000',
};
// As Anthropic streams: message_start, content_block_start, then deltas. A pool reads a stream up
// to its first content event before relaying it (src/upstream/holdAnswer.ts), so it must come.
const event = (i: number) =>
  i === 0
    ? `event: message_start\ndata: {"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[],"usage":{"input_tokens":12,"output_tokens":0}}}\n\n`
    : i === 1
      ? `event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n`
      : `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"token ${i} "}}\n\n`;

let requests = 0;
let rejected = 0;
let lastRejection = '';

function reject(res: http.ServerResponse, status: number, message: string) {
  rejected++;
  lastRejection = message;
  const body = JSON.stringify({ type: 'error', error: { type: 'authentication_error', message } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  requests++;
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/v1/messages') return reject(res, 404, `no route ${req.method} ${req.url}`);
    if (req.headers.authorization !== undefined) {
      if (req.headers['x-api-key'] !== undefined) return reject(res, 400, 'both x-api-key and authorization reached the provider');
      if (req.headers.authorization !== `Bearer ${ACCESS_TOKEN}`) return reject(res, 401, 'invalid bearer token');
      if (!String(req.headers['anthropic-beta'] ?? '').includes('oauth-2025-04-20')) return reject(res, 401, 'oauth beta missing');
    } else if (req.headers['x-api-key'] !== API_KEY) {
      return reject(res, 401, 'invalid x-api-key');
    }
    if (req.headers['x-maestro-credential'] !== undefined) return reject(res, 400, 'x-maestro-* header reached the provider');
    if (!req.headers['anthropic-version']) return reject(res, 400, 'anthropic-version missing');
    let body: { stream?: boolean };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: boolean };
    } catch {
      return reject(res, 400, 'body is not JSON');
    }
    if (body.stream !== true) {
      res.writeHead(200, MESSAGE_HEADERS);
      res.end(MESSAGE);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'request-id': 'req_bench_stream',
    });
    let i = 0;
    const tick = () => {
      if (res.destroyed) return;
      // message_start and content_block_start leave together, as Anthropic's do; deltas follow.
      if (i === 0) res.write(event(i++));
      res.write(event(i++));
      if (i < EVENTS) setTimeout(tick, EVENT_INTERVAL_MS);
      else res.end('event: message_stop\ndata: {"type":"message_stop"}\n\n');
    };
    tick();
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 70_000;
server.maxRequestsPerSocket = 0;

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  serve(
    {
      counters: () => ({ requests, rejected, lastRejection }),
      shutdown: () => {
        setImmediate(() => process.exit(0));
        return true;
      },
    },
    { url: `http://127.0.0.1:${port}`, apiKey: API_KEY, accessToken: ACCESS_TOKEN, messageBytes: MESSAGE.length },
  );
});
