// The request body of a provider call: read, limited, and held when it can be sent again. A body
// up to REPLAYABLE_BODY_BYTES is held whole — with a content-length or chunked alike — so it can
// be rewritten (the Claude Code system block, the usage ask) and replayed after a refused token; a
// larger one streams through once, still stopped at the limit (413) and at a stall (408).
import type { IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { CallerGoneError, HttpError } from '../errors.js';
import { bodyStalled, type StalledBodies } from './stalledBodies.js';

/** Bodies up to this size are held so a call can be rewritten and retried; larger ones stream through once. */
export const REPLAYABLE_BODY_BYTES = 1024 * 1024;

export interface RequestBody {
  /** The whole body, when held (replayable); undefined for a streamed one or none. */
  held: Buffer | undefined;
  /** `held`, when it is not content-encoded (what may be read and rewritten). */
  plain: Buffer | undefined;
  /** True when there is a body at all. */
  present: boolean;
  /** True when the call can be sent again (no body, or a held one). */
  replayable: boolean;
  /** The streamed body, for the one send it allows (undefined when held or absent). */
  stream(): Readable | undefined;
  /** Bytes of the body read so far (all of a held one). */
  bytes(): number;
}

export interface BodyLimits {
  /** The largest body accepted (MAESTRO_BODY_LIMIT_BYTES). */
  limit: number;
  bodies: StalledBodies;
  /**
   * A sign-in backend that maps calls rewrites the body: it is held whole however large (up to the
   * limit) and must be plain; the text of the 415 for an encoded one.
   */
  mapped?: { notPlain: string };
}

const tooLarge = (limit: number) => new HttpError(413, 'payload_too_large', `request body is larger than ${limit} bytes`);

/**
 * Reads what a call needs of its body before it is sent: all of it when it is held, nothing (or
 * the first MiB of a chunked one that turns out larger) when it streams.
 */
export async function readRequestBody(req: IncomingMessage, limits: BodyLimits): Promise<RequestBody> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limits.limit) throw tooLarge(limits.limit);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const present = chunked || declared > 0;
  if (!present) return heldBody(undefined, req, false);
  if (limits.mapped && req.headers['content-encoding']) throw new HttpError(415, 'unsupported_media_type', limits.mapped.notPlain);
  if (limits.mapped || (!chunked && declared <= REPLAYABLE_BODY_BYTES)) {
    return heldBody(await readUpTo(req, limits, limits.limit, true), req, true);
  }
  // Chunked (or declared over a MiB): held if it ends within a MiB, else what was read leads the stream.
  if (chunked && limits.limit <= REPLAYABLE_BODY_BYTES) return heldBody(await readUpTo(req, limits, limits.limit, true), req, true);
  const head = chunked ? await readUpTo(req, limits, REPLAYABLE_BODY_BYTES, false) : undefined;
  if (head && req.complete) return heldBody(head, req, true);
  let sent = 0;
  return {
    held: undefined,
    plain: undefined,
    present: true,
    replayable: false,
    stream: () => limited(req, head, limits, (n) => (sent += n)),
    bytes: () => sent,
  };
}

/** A body the caller already holds whole (a durable call's JSON), as the pipeline takes it. */
export function heldRequestBody(body: Buffer | undefined): RequestBody {
  return {
    held: body,
    plain: body,
    present: body !== undefined,
    replayable: true,
    stream: () => undefined,
    bytes: () => body?.length ?? 0,
  };
}

function heldBody(held: Buffer | undefined, req: IncomingMessage, present: boolean): RequestBody {
  const plain = held && !req.headers['content-encoding'] ? held : undefined;
  return { held, plain, present, replayable: true, stream: () => undefined, bytes: () => held?.length ?? 0 };
}

/**
 * The body until it ends, or until `max` bytes when `whole` is false (the rest stays unread in
 * `req`). Always settles: a client that left (before this was called, or while its body arrives)
 * rejects with CallerGoneError, a body over `max` when `whole` with a 413, one that stops arriving
 * with a 408.
 */
function readUpTo(req: IncomingMessage, limits: BodyLimits, max: number, whole: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (error?: Error) => {
      stopWatching();
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, size));
    };
    const onClose = () => finish(new CallerGoneError('the client left before its request body arrived'));
    const onEnd = () => finish();
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      if (size <= max) return;
      if (whole) {
        req.resume(); // drain the rest, so the connection can answer and close
        finish(tooLarge(limits.limit));
      } else {
        req.pause();
        finish(); // enough to know it streams: the rest is read by the stream
      }
    };
    if (req.destroyed) return reject(new CallerGoneError('the client left before its request body arrived')); // no event will come
    const stopWatching = limits.bodies.watch(req, () => finish(bodyStalled(limits.bodies.idleMs)));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    req.once('error', onClose);
    req.resume();
  });
}

/** `head` (already read) then the rest of `req`, stopped at the limit (413) and at a stall (408); `count` sees every byte. */
function limited(req: IncomingMessage, head: Buffer | undefined, limits: BodyLimits, count: (n: number) => number): Readable {
  const stopWatching = limits.bodies.watch(req, () => counter.destroy(bodyStalled(limits.bodies.idleMs)));
  req.once('end', stopWatching);
  req.once('close', stopWatching);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (count(chunk.length) <= limits.limit) return done(null, chunk);
      req.unpipe(counter);
      req.resume(); // drain the rest, so the connection can answer and close
      done(tooLarge(limits.limit));
    },
  });
  req.once('error', (error) => counter.destroy(error));
  if (head) counter.write(head);
  return req.pipe(counter);
}
