// HTTP from tests: calls to a Maestro API with the test key, plain requests to any URL, and
// requests sent exactly as written (raw headers, raw bytes on a socket) for hostile inputs.
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import { TEST_API_KEY } from './temporal.js';

export interface ApiAnswer {
  status: number;
  json: any;
  text: string;
  headers: Headers;
}

/** A request to any URL; the answer's text, and its JSON when it is JSON. */
export async function httpRequest(
  url: string,
  { method = 'GET', body, headers = {} }: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const res = await fetch(url, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** A call to a Maestro API with the test key (unless headers say otherwise); `body` is sent as JSON. */
export function callApi(
  url: string,
  method: string,
  path: string,
  { body, raw, headers }: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  return httpRequest(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TEST_API_KEY}`,
      ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
}

export function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

/** An HTTP request sent as written (no path normalisation, any header), for hostile inputs. */
export function rawRequest(
  port: number,
  opts: {
    method?: string;
    path: string;
    headers?: http.OutgoingHttpHeaders;
    body?: string | Buffer;
    setHost?: boolean;
    timeoutMs?: number;
  },
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: opts.headers,
        setHost: opts.setHost ?? true,
        agent: false,
        insecureHTTPParser: false,
      },
      (res) => {
        readAll(res).then((b) => {
          const text = b.toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        }, reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`timeout: ${opts.method ?? 'GET'} ${opts.path}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Bytes written straight to a socket; resolves with everything the server sent back. */
export function rawSocket(port: number, payload: string | Buffer, timeoutMs = 10_000, answers = 1): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (d) => {
      data += d.toString('latin1');
      // Stop once `answers` complete answers (head + declared body) arrived.
      let at = 0;
      for (let n = 0; n < answers; n++) {
        const headEnd = data.indexOf('\r\n\r\n', at);
        const length = headEnd < 0 ? undefined : /content-length:\s*(\d+)/i.exec(data.slice(at, headEnd))?.[1];
        if (length === undefined || data.length < headEnd + 4 + Number(length)) return;
        at = headEnd + 4 + Number(length);
      }
      socket.end();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.on('error', () => undefined);
  });
}
