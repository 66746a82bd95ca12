// What a pool needs to read of an answer before it decides to relay it or try another member,
// without losing a byte of it: a small error body (its type tells a billing refusal from a rate
// limit), and the head of an Anthropic stream up to its first content event (an
// `overloaded_error` or `rate_limit_error` before any content fails over; after content has begun
// nothing is sent again). What was read is put back in front of the rest, so the relay sees the
// answer as it came.
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { errorBodyOf, type ErrorBodyView } from '../pools/classify.js';

/** An error body longer than this is not read for its type (classified by status and headers). */
const ERROR_BODY_MAX = 64 * 1024;
/** A stream head longer than this without a content event is let through as it is. */
const STREAM_HEAD_MAX = 64 * 1024;

export interface HeldAnswer {
  answer: Dispatcher.ResponseData;
  /** A held JSON error body's `error.type` and `error.message` (Anthropic and OpenAI shapes). */
  errorBody?: ErrorBodyView;
  /** An error event that came before the stream's first content event. */
  streamError?: string;
}

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** True when holdAnswer would read something of this answer (an error, or a stream to peek); else it is classified as it is. */
export function needsHolding(answer: Dispatcher.ResponseData, peekStreams: boolean): boolean {
  const encoded = header(answer.headers['content-encoding']);
  if (encoded && encoded !== 'identity') return false;
  return answer.statusCode >= 400 || (peekStreams && /^text\/event-stream/i.test(header(answer.headers['content-type']) ?? ''));
}

/** Reads what is needed to classify the answer; the answer returned replays those bytes first. */
export async function holdAnswer(answer: Dispatcher.ResponseData, peekStreams: boolean): Promise<HeldAnswer> {
  const encoded = header(answer.headers['content-encoding']);
  if (encoded && encoded !== 'identity') return { answer };
  if (answer.statusCode >= 400) {
    const length = Number(header(answer.headers['content-length']) ?? NaN);
    if (Number.isFinite(length) && length > ERROR_BODY_MAX) return { answer };
    const { head, rest, ended } = await readHead(answer, (bytes) => bytes.length > ERROR_BODY_MAX);
    const errorBody = ended ? errorBodyOf(Buffer.concat(head)) : undefined;
    return { answer: replayed(answer, head, rest), errorBody };
  }
  if (!peekStreams || !/^text\/event-stream/i.test(header(answer.headers['content-type']) ?? '')) return { answer };
  let streamError: string | undefined;
  const { head, rest } = await readHead(answer, (bytes) => {
    if (bytes.length > STREAM_HEAD_MAX) return true;
    const text = bytes.toString('utf8');
    const content = text.indexOf('event: content_block_start');
    const error = text.indexOf('event: error');
    if (error >= 0 && (content < 0 || error < content)) {
      const data = /event: error\r?\ndata: (.*)\r?\n/.exec(text.slice(error));
      if (!data) return false; // the error event's data has not all come yet
      streamError = errorBodyOf(data[1])?.type ?? 'error';
      return true;
    }
    return content >= 0;
  });
  return { answer: replayed(answer, head, rest), streamError };
}

/** Reads chunks until `enough(all so far)` or the end; the iterator keeps the rest unread. */
async function readHead(
  answer: Dispatcher.ResponseData,
  enough: (bytes: Buffer) => boolean,
): Promise<{ head: Buffer[]; rest: AsyncIterator<Buffer>; ended: boolean }> {
  const rest = (answer.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  for (;;) {
    const next = await rest.next();
    if (next.done) return { head, rest, ended: true };
    head.push(next.value);
    if (enough(Buffer.concat(head))) return { head, rest, ended: false };
  }
}

function replayed(answer: Dispatcher.ResponseData, head: Buffer[], rest: AsyncIterator<Buffer>): Dispatcher.ResponseData {
  const source = answer.body;
  const body = Readable.from(
    (async function* () {
      yield* head;
      for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
    })(),
    { objectMode: false },
  );
  // Destroying the replay (a client that left) destroys the upstream body, which aborts the call.
  body.once('close', () => {
    if (!source.destroyed) source.destroy();
  });
  // The replay stands in for undici's body: the pipeline only reads it, and discards it with dump().
  const dump = async () => {
    body.destroy();
    await source.dump().catch(() => {});
  };
  return { ...answer, body: Object.assign(body, { dump }) as unknown as Dispatcher.ResponseData['body'] };
}
