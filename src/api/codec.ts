// POST /codec/encode and /codec/decode: Temporal's remote codec protocol, so operators read
// Maestro's encrypted payloads in the Web UI (`--ui-codec-endpoint`) or the CLI
// (`temporal workflow show --codec-endpoint … --codec-auth "Bearer <admin key>"`). Admin key
// required. Exception, development only: the local dev server's Web UI, calling from the same
// machine (TCP peer on loopback, its own origin), is let through; it cannot send a key.
import type { IncomingMessage } from 'node:http';
import type { PayloadCodec } from '@temporalio/common';
import express, { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { HttpError } from '../errors.js';

export interface CodecDeps {
  codec: PayloadCodec;
  /** Origins (the Web UI's) allowed to call from a browser. */
  corsOrigins: string[];
  /** Development: this origin, from a loopback peer, needs no key (the local dev server's UI). */
  devUiOrigin?: string;
}

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'payload bytes must be base64');
/** Temporal's remote codec body: payloads as protobuf JSON (bytes in base64). */
export const codecBodySchema = z
  .object({
    payloads: z
      .array(z.object({ metadata: z.record(z.string(), base64).optional(), data: base64.optional() }))
      .max(1000, 'at most 1000 payloads per call'),
  })
  .meta({ id: 'CodecPayloads' });
const bodySchema = codecBodySchema;
type JsonPayload = z.infer<typeof bodySchema>['payloads'][number];

const fromJson = (p: JsonPayload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: { metadata?: Record<string, Uint8Array> | null; data?: Uint8Array | null }) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

export function createCodecRoutes(deps: CodecDeps, requireAdmin: RequestHandler): Router {
  const router = Router();
  const fromDevUi = (req: IncomingMessage) =>
    deps.devUiOrigin !== undefined && req.headers.origin === deps.devUiOrigin && LOOPBACK.has(req.socket.remoteAddress ?? '');

  router.use((req, res, next) => {
    const origin = req.headers.origin;
    if (origin && deps.corsOrigins.includes(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'origin');
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'POST');
      res.setHeader('access-control-allow-headers', 'authorization, content-type, x-namespace');
      res.setHeader('access-control-max-age', '600');
      res.status(204).end();
      return;
    }
    next();
  });
  router.use((req, res, next) => (fromDevUi(req) ? next() : requireAdmin(req, res, next)));
  router.use(express.json({ limit: '4mb' }));

  for (const direction of ['encode', 'decode'] as const) {
    router.post(`/${direction}`, async (req, res) => {
      const { payloads } = bodySchema.parse(req.body);
      let out;
      try {
        out = await deps.codec[direction](payloads.map(fromJson));
      } catch {
        throw new HttpError(400, 'invalid_request', `a payload could not be ${direction}d (wrong key, or not a Maestro payload)`);
      }
      res.json({ payloads: out.map(toJson) });
    });
  }
  return router;
}
