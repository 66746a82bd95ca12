// Wire-level pieces the fake provider's parts share: the recorded/scripted request and answer
// types, each provider's paths, token body shapes and defaults, and the plumbing that writes
// answers (JSON or SSE, compressed when the client accepts it).
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import type { ProviderId } from '../../../src/config.js';
import { ANTHROPIC_DEFAULTS } from '../../../src/providers/anthropic.js';
import { GEMINI_DEFAULTS } from '../../../src/providers/gemini.js';
import { OPENAI_DEFAULTS } from '../../../src/providers/openai.js';

export type Compression = 'gzip' | 'deflate' | 'br';

export type Format = 'json' | 'form';

/** How an API request was authorised; sent back as `x-fake-auth`. */
export type ApiAuth = 'api_key' | 'oauth';

export interface RecordedRequest {
  kind: 'token' | 'authorize' | 'api' | 'quota' | 'other';
  method: string;
  /** Path without the query. */
  path: string;
  /** `?…` or ''. */
  search: string;
  headers: IncomingHttpHeaders;
  /** Decoded body bytes (request content-encoding undone). */
  body: Buffer;
  /** Parsed JSON body, when it is JSON. */
  json?: unknown;
  /** Parsed form body, when it is application/x-www-form-urlencoded. */
  form?: Record<string, string>;
}

export interface ScriptedResponse {
  status: number;
  /**
   * A string is sent as is (use it for malformed answers); a Buffer is sent byte for byte and
   * never re-compressed (set its content-encoding in headers); anything else as JSON; absent: empty body.
   */
  body?: unknown;
  headers?: Record<string, string>;
  /** Cut the connection after reading the request, without an answer (a call that may have been processed). */
  reset?: boolean;
}

export interface AuthorizeResult {
  code: string;
  state: string;
  /** The redirect the provider would send the browser to. */
  redirectUrl: string;
  /** What a user would paste back for this provider: anthropic `code#state`, openai the redirect URL, gemini the bare code. */
  pasted: string;
}

export const PATHS: Record<ProviderId, { token: string; authorize: string }> = {
  anthropic: { token: '/v1/oauth/token', authorize: '/oauth/authorize' },
  openai: { token: '/oauth/token', authorize: '/oauth/authorize' },
  gemini: { token: '/token', authorize: '/o/oauth2/v2/auth' },
};

export const TOKEN_SHAPES: Record<ProviderId, Record<'authorization_code' | 'refresh_token', { format: Format; keys: string[] }>> = {
  anthropic: {
    authorization_code: { format: 'json', keys: ['grant_type', 'code', 'state', 'client_id', 'redirect_uri', 'code_verifier'] },
    refresh_token: { format: 'json', keys: ['grant_type', 'refresh_token', 'client_id'] },
  },
  openai: {
    authorization_code: { format: 'form', keys: ['grant_type', 'code', 'redirect_uri', 'client_id', 'code_verifier'] },
    refresh_token: { format: 'json', keys: ['client_id', 'grant_type', 'refresh_token'] },
  },
  gemini: {
    authorization_code: {
      format: 'form',
      keys: ['grant_type', 'code', 'redirect_uri', 'client_id', 'client_secret', 'code_verifier'],
    },
    refresh_token: { format: 'form', keys: ['grant_type', 'refresh_token', 'client_id', 'client_secret'] },
  },
};

export const DEFAULTS: Record<ProviderId, { clientId: string; clientSecret?: string; redirectUri: string }> = {
  anthropic: ANTHROPIC_DEFAULTS,
  openai: OPENAI_DEFAULTS,
  gemini: GEMINI_DEFAULTS,
};

export const CONTENT_TYPE: Record<Format, string> = { json: 'application/json', form: 'application/x-www-form-urlencoded' };

export class HttpAnswer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

export function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

export function sha256url(value: string): string {
  return createHash('sha256').update(value, 'ascii').digest('base64url');
}

/** An unsigned JWT-shaped token (the fake's tokens are opaque to Maestro except for their claims). */
export function fakeJwt(claims: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc(claims)}.${randomBytes(32).toString('base64url')}`;
}

export function compressSync(encoding: Compression, data: Buffer): Buffer {
  return encoding === 'gzip' ? zlib.gzipSync(data) : encoding === 'deflate' ? zlib.deflateSync(data) : zlib.brotliCompressSync(data);
}

/** What a streamed answer needs from the server around it. */
export interface StreamPacing {
  /** Waits before each event after the first; returns early when the fake closes or `res` goes away. */
  pause(res: ServerResponse): Promise<void>;
  /** True once the fake is closing. */
  closed(): boolean;
  /** Counts a stream cut short because the client closed the connection. */
  abandoned(): void;
  /**
   * Before an event: waits until the client leaves when the event holds the text the test set
   * (holdStreamBefore), so "the client left before this event" does not depend on timing.
   */
  hold(event: string, res: ServerResponse): Promise<void>;
}

/** send() and sendStream(), compressing with `compression` when the request's accept-encoding allows it. */
export function createSender(compression: Compression | undefined, pacing: StreamPacing) {
  function chooseEncoding(req: IncomingMessage): Compression | undefined {
    if (!compression) return undefined;
    const accepted = String(req.headers['accept-encoding'] ?? '')
      .split(',')
      .map((part) => part.split(';')[0]!.trim().toLowerCase());
    return accepted.includes(compression) ? compression : undefined;
  }

  function encoder(encoding: Compression): zlib.Gzip | zlib.Deflate | zlib.BrotliCompress {
    return encoding === 'gzip' ? zlib.createGzip() : encoding === 'deflate' ? zlib.createDeflate() : zlib.createBrotliCompress();
  }

  function send(req: IncomingMessage, res: ServerResponse, answer: HttpAnswer): void {
    const verbatim = Buffer.isBuffer(answer.body);
    const raw = Buffer.isBuffer(answer.body)
      ? answer.body
      : answer.body === undefined
        ? Buffer.alloc(0)
        : typeof answer.body === 'string'
          ? Buffer.from(answer.body)
          : Buffer.from(JSON.stringify(answer.body));
    const headers: Record<string, string> = {
      ...(verbatim || typeof answer.body === 'string' || answer.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...answer.headers,
    };
    const encoding = raw.length > 0 && !verbatim ? chooseEncoding(req) : undefined;
    const body = encoding ? compressSync(encoding, raw) : raw;
    if (encoding) {
      headers['content-encoding'] = encoding;
      headers.vary = 'accept-encoding';
    }
    res.writeHead(answer.status, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  }

  async function sendStream(
    req: IncomingMessage,
    res: ServerResponse,
    events: string[],
    contentType: string,
    auth: ApiAuth,
    extraHeaders: Record<string, string> = {},
  ): Promise<void> {
    const encoding = chooseEncoding(req);
    res.writeHead(200, {
      ...extraHeaders,
      'content-type': contentType,
      'cache-control': 'no-cache',
      'x-fake-auth': auth,
      ...(encoding ? { 'content-encoding': encoding, vary: 'accept-encoding' } : {}),
    });
    const out = encoding ? encoder(encoding) : undefined;
    if (out) out.pipe(res);
    for (let i = 0; i < events.length; i++) {
      if (pacing.closed() || res.destroyed) return;
      if (i > 0) await pacing.pause(res);
      await pacing.hold(events[i]!, res);
      if (res.destroyed) {
        pacing.abandoned();
        return;
      }
      if (out) {
        out.write(events[i]!);
        await new Promise<void>((resolve) => out.flush(resolve));
      } else {
        res.write(events[i]!);
      }
    }
    if (out) out.end();
    else res.end();
  }

  return { send, sendStream };
}
