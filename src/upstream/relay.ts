// The answer side of a provider call: a sign-in backend's answer mapped back to the public API's,
// decoded once where it must be read, watched for its usage, and either relayed to the client as
// it streams (the proxy) or read whole (durable messages). Both end with what the answer said
// about its usage and the status the client got.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { mapWhole } from '../auth/backends/sse.js';
import { createDecoder } from '../auth/decode.js';
import { readBody } from '../auth/http.js';
import type { ProviderId } from '../providers/types.js';
import { stripStreamUsage } from '../usage/streamUsage.js';
import { watchUsage, type CallObservation } from '../usage/tap.js';
import type { Metering, OutgoingCall } from './call.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
]);

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
const isEventStream = (contentType: string | undefined | null) => /^text\/event-stream/i.test(contentType ?? '');

export interface Relayed {
  /** The status the client got (a mapped answer may have found the call failed after all). */
  status: number;
  observation: CallObservation;
}

/**
 * Relays an answer to the client as it streams, with back-pressure; the usage is watched beside
 * the pipe (a 'data' listener: every chunk passes on as it came). `firstChunkOut` runs once the
 * first chunk is on its way (the rate-limit state and request count wait for it: between a
 * stream's events the process goes cold, and that bookkeeping then costs more than the relay,
 * docs/BENCHMARKS.md 5.4); for a mapped answer, whose status may still change, it is left to the
 * caller at the end. `settled` gets what the answer said, once: before a relayed answer ends (a
 * client that has its whole answer may send its next request at once, and that one must see this
 * call in its key's budget), else when it has ended. Never throws: a client that leaves or an
 * upstream reset ends the answer, and what was seen before the cut is what it said.
 */
export async function relayAnswer(
  upstream: Dispatcher.ResponseData,
  out: OutgoingCall,
  metering: Metering,
  res: ServerResponse,
  provider: ProviderId,
  hooks: {
    firstChunkOut: () => void;
    settled: (relayed: Relayed) => void;
    /** A header of Maestro's own on the answer (a pool's `x-maestro-credential-id`): part of the one head written, not set ahead of it (that would send every header through setHeader). */
    own?: readonly [name: string, value: string];
  },
): Promise<void> {
  const { firstChunkOut } = hooks;
  const ok = upstream.statusCode >= 200 && upstream.statusCode < 300;
  // A sign-in backend's 2xx answer is mapped back to the public API's (errors pass as they come).
  const mapping = ok ? out.call.answer : undefined;
  if (!mapping) {
    setImmediate(() => {
      try {
        firstChunkOut();
      } catch {
        /* bookkeeping never takes the process down */
      }
    });
  }
  const outHeaders = responseHeaders(upstream.headers);
  if (hooks.own) outHeaders[hooks.own[0]] = hooks.own[1];
  // A stream whose usage Maestro asked for: what the client did not ask for is taken out.
  const strip =
    metering.asked && ok && !mapping && !upstream.headers['content-encoding'] && isEventStream(header(upstream.headers['content-type']))
      ? stripStreamUsage()
      : undefined;
  if (strip) delete outHeaders['content-length'];
  if (mapping) {
    delete outHeaders['content-length'];
    delete outHeaders['content-encoding'];
    outHeaders['content-type'] = mapping.contentType;
    // The mapping may still find the answer failed (a Codex stream with a failure event: 502):
    // the head is only set here and leaves with the mapping's first bytes, status as it decided.
    res.statusCode = upstream.statusCode;
    for (const name in outHeaders) res.setHeader(name, outHeaders[name]!);
  } else {
    // Headers leave with the first body chunk (one write, not two); an SSE stream's first event
    // follows its headers at once, so nothing waits.
    res.writeHead(upstream.statusCode, outHeaders);
  }
  // On a mapped answer the usage is read from what the client gets (the public API's shape); a
  // stripped stream is watched before its stripping.
  const watch = watchUsage(provider, {
    statusCode: upstream.statusCode,
    contentType: mapping ? mapping.contentType : header(upstream.headers['content-type']),
    contentEncoding: mapping ? undefined : header(upstream.headers['content-encoding']),
  });
  const mapper = mapping?.transform((status) => (res.statusCode = status)) ?? strip;
  const seenBody: Readable = strip ? upstream.body : (mapper ?? upstream.body);
  // Mapped answers were asked uncompressed; one compressed anyway is decoded before the mapping.
  const decoder = mapping ? createDecoder(upstream.headers['content-encoding']) : undefined;
  // The pipe is in place before the listener, so no chunk can flow past it unseen by res.
  let settled = false;
  const settle = () => {
    if (settled) return;
    settled = true;
    hooks.settled({ status: res.statusCode, observation: watch.observation() });
  };
  const piped = mapper
    ? decoder
      ? pipeline(upstream.body, decoder, mapper, res)
      : pipeline(upstream.body, mapper, res)
    : pipeTo(upstream.body, res, async () => {
        await watch.end();
        settle();
      });
  seenBody.on('data', (chunk: Buffer | string) => watch.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
  try {
    await piped;
    await watch.end();
  } catch {
    // Client disconnect or upstream reset mid-stream: the response is already under way.
    watch.abandon(); // what was seen before the cut still counts
    res.destroy();
  }
  settle();
}

/**
 * A durable call's answer, read whole: decoded, mapped back to the public API's (a failed Codex
 * stream's status decided by the mapping), watched for its usage, and stripped of what the
 * client did not ask for. A body that cannot be read throws (the caller's to map).
 */
export async function readAnswer(
  upstream: Dispatcher.ResponseData,
  out: OutgoingCall,
  metering: Metering,
  provider: ProviderId,
): Promise<Relayed & { raw: Buffer; contentType: string | null }> {
  let status = upstream.statusCode;
  const ok = status >= 200 && status < 300;
  const decoded = await readBody(upstream.body, header(upstream.headers['content-encoding']));
  const mapping = ok ? out.call.answer : undefined;
  let raw = mapping
    ? await mapWhole(
        decoded,
        mapping.transform((decided) => (status = decided)),
      )
    : decoded;
  const contentType = mapping ? mapping.contentType : (header(upstream.headers['content-type']) ?? null);
  const watch = watchUsage(provider, { statusCode: status, contentType: contentType ?? undefined });
  watch.write(raw);
  await watch.end();
  if (metering.asked && ok && isEventStream(contentType)) raw = await mapWhole(raw, stripStreamUsage());
  return { status, observation: watch.observation(), raw, contentType };
}

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const connectionListed =
    headers.connection === undefined
      ? undefined
      : new Set(
          String(headers.connection)
            .split(',')
            .map((h) => h.trim().toLowerCase())
            .filter(Boolean),
        );
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || connectionListed?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * source → res with back-pressure, like stream.pipeline for this one pair but without the
 * AbortController (and the DOMException its clean-up abort creates) pipeline makes per call.
 * The answer is ended only after `beforeEnd`. Resolves when res has finished; rejects when either
 * side fails or the client goes away first, and then the other side is destroyed too (the
 * upstream request is aborted).
 */
function pipeTo(source: Readable, res: ServerResponse, beforeEnd: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      source.destroy();
      res.destroy();
      reject(error);
    };
    source.once('error', fail);
    res.once('error', fail);
    res.once('finish', resolve);
    res.once('close', () => {
      if (!res.writableFinished) fail(new Error('the client closed the connection before the answer was sent'));
    });
    source.once('end', () => {
      beforeEnd().then(
        () => res.end(),
        (error: Error) => fail(error),
      );
    });
    source.pipe(res, { end: false });
  });
}
