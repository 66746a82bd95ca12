// OpenAI sign-in (ChatGPT) → the Codex backend: the Responses API at <oauth base>/responses,
// which accepts only `store: false`, `stream: true` and an `instructions` string. A client that
// asked for one JSON answer gets the Response object of the stream's `response.completed` event,
// or, when the stream failed, an error answer with an error status (finalAnswer).
import { ValidationError } from '../../errors.js';
import { Transform } from 'node:stream';
import { collect, SseParser, sseEvent, type WholeAnswer } from './sse.js';
import { jsonObject, type MappedRequest, type PublicRequest } from './request.js';

/** Sent when the client gives no instructions (the backend requires the field). */
export const CODEX_DEFAULT_INSTRUCTIONS = 'You are a helpful assistant.';

export function mapCodex(request: PublicRequest): MappedRequest {
  if (request.method.toUpperCase() !== 'POST' || request.path !== '/v1/responses') {
    throw new ValidationError(
      `${request.method.toUpperCase()} ${request.path.slice(0, 100)} needs an OpenAI API key credential: a ChatGPT sign-in credential serves only POST /v1/responses (through the Codex backend)`,
    );
  }
  const body = jsonObject(request.body, 'POST /v1/responses');
  const streamed = body.stream === true;
  const mapped: Record<string, unknown> = {
    ...body,
    instructions: typeof body.instructions === 'string' ? body.instructions : CODEX_DEFAULT_INSTRUCTIONS,
    // The backend keeps nothing and answers only as a stream.
    store: false,
    stream: true,
    // It takes input as a list of items: a bare string is the one user message it stands for.
    ...(typeof body.input === 'string'
      ? { input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: body.input }] }] }
      : {}),
  };
  return {
    path: '/responses',
    search: '',
    body: Buffer.from(JSON.stringify(mapped)),
    headers: { 'content-type': 'application/json', 'accept-encoding': 'identity' },
    // Streamed: the backend's events are the public API's events, passed as they come (and an
    // error event after them when the stream ended without a final one).
    answer: streamed
      ? { contentType: 'text/event-stream', transform: endsWithFinalEvent }
      : { contentType: 'application/json', transform: (setStatus) => collect(finalAnswer, setStatus) },
  };
}

/**
 * The public API's answer to a non-streamed call, from the whole stream: the Response object of
 * a `response.completed` (or `response.incomplete`) event, as is. A stream that failed (a
 * `response.failed` or `error` event, or no final event at all) is an error, not a success with
 * an error inside: `{error: {type, code, message}}` with 502, or the status the event names.
 */
export function finalAnswer(stream: Buffer): WholeAnswer {
  const parser = new SseParser();
  let final: unknown;
  let failure: CodexFailure | undefined;
  for (const event of [...parser.push(stream), ...parser.end()]) {
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(event.data) as typeof data;
    } catch {
      continue;
    }
    const type = typeof data.type === 'string' ? data.type : event.event;
    if (type === 'response.completed' || type === 'response.incomplete') {
      if (data.response !== undefined) [final, failure] = [data.response, undefined];
    } else if (type === 'response.failed') {
      failure = failureOf(objectOr(objectOr(data.response).error), data, 'the Codex backend reported the response as failed');
    } else if (type === 'error') {
      // The first error is the cause; later ones are fallout.
      failure ??= failureOf(objectOr(data.error), data, 'the Codex backend reported an error');
    }
  }
  if (failure) return errorAnswer(failure);
  if (final === undefined) {
    return errorAnswer({ status: 502, message: NO_FINAL_EVENT });
  }
  return JSON.stringify(final);
}

/** The events after which a Responses stream is over, failed or not. */
const LAST_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);
const NO_FINAL_EVENT = 'the Codex backend ended its stream without a final response event';

/**
 * Passes a streamed answer on untouched (same chunks); when it ends without a final or error
 * event, adds an `error` event, so the client (and Maestro's usage count) sees a failure and not
 * a stream that simply stopped.
 */
function endsWithFinalEvent(): Transform {
  const parser = new SseParser();
  let ended = false;
  const sawLast = (events: ReturnType<SseParser['push']>) =>
    events.some((event) => LAST_EVENTS.has(event.event ?? /^\{"type":"([^"]+)"/.exec(event.data)?.[1] ?? ''));
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (!ended && sawLast(parser.push(chunk))) ended = true;
      done(null, chunk);
    },
    flush(done) {
      if (ended || sawLast(parser.end())) return done();
      done(null, sseEvent(JSON.stringify({ type: 'error', code: 'stream_incomplete', message: NO_FINAL_EVENT }), 'error'));
    },
  });
}

interface CodexFailure {
  status: number;
  type?: string;
  code?: string;
  message: string;
}

/** A failure event's code, message and status (`error` events carry them at the top or under `error`). */
function failureOf(error: Record<string, unknown>, event: Record<string, unknown>, fallback: string): CodexFailure {
  const text = (...values: unknown[]) => values.find((v): v is string => typeof v === 'string' && v !== '');
  const status = [error.status, event.status].find((v): v is number => Number.isInteger(v) && (v as number) >= 400 && (v as number) <= 599);
  return {
    status: status ?? 502,
    type: text(error.type),
    code: text(error.code, event.code),
    message: text(error.message, event.message) ?? fallback,
  };
}

function errorAnswer(failure: CodexFailure): WholeAnswer {
  const type = failure.type ?? failure.code ?? 'provider_error';
  return {
    status: failure.status,
    body: JSON.stringify({ error: { type, ...(failure.code ? { code: failure.code } : {}), message: failure.message } }),
  };
}

function objectOr(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
