// OpenAI sign-in (ChatGPT) → the Codex backend: the Responses API at <oauth base>/responses,
// which accepts only `store: false`, `stream: true` and an `instructions` string. A client that
// asked for one JSON answer gets the Response object of the stream's `response.completed` event.
import { ValidationError } from '../../errors.js';
import { collect, SseParser } from './sse.js';
import { jsonObject, type MappedRequest, type PublicRequest } from './index.js';

/** Sent when the client gives no instructions (the backend requires the field). */
export const CODEX_DEFAULT_INSTRUCTIONS = 'You are a helpful assistant.';

/** The events that end a Responses stream and carry the final Response object. */
const FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

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
    // Streamed: the backend's events are the public API's events, passed as they come.
    answer: streamed ? undefined : { contentType: 'application/json', transform: () => collect(finalResponse) },
  };
}

/** The Response object of the last final event, as the public API answers a non-streamed call. */
export function finalResponse(stream: Buffer): string {
  const parser = new SseParser();
  let final: unknown;
  for (const event of [...parser.push(stream), ...parser.end()]) {
    let data: { type?: unknown; response?: unknown };
    try {
      data = JSON.parse(event.data) as typeof data;
    } catch {
      continue;
    }
    const type = typeof data.type === 'string' ? data.type : event.event;
    if (type && FINAL_EVENTS.has(type) && data.response !== undefined) final = data.response;
    if (type === 'error') final ??= { error: data };
  }
  return JSON.stringify(
    final ?? { error: { type: 'upstream_error', message: 'the Codex backend ended its stream without a final response event' } },
  );
}
