// Gemini sign-in (Gemini CLI / Code Assist) → Code Assist: the public
// `/v1beta/models/<m>:generateContent | :streamGenerateContent | :countTokens` become
// `/v1internal:<method>` with the body `{model, project, request: <public body>}` (countTokens:
// `{request: {model: "models/<m>", contents}}`), and answers come back unwrapped from `response`,
// JSON and every SSE event alike. A stream without `?alt=sse` is the public JSON array.
import { ValidationError } from '../../errors.js';
import { collect, mapSse, sseEvent } from './sse.js';
import { jsonObject, type MappedRequest, type PublicRequest } from './request.js';

const PUBLIC_PATH = /^\/(?:v1beta|v1)\/models\/([A-Za-z0-9][A-Za-z0-9._-]*):(generateContent|streamGenerateContent|countTokens)$/;

export function mapCodeAssist(request: PublicRequest): MappedRequest {
  const match = request.method.toUpperCase() === 'POST' ? PUBLIC_PATH.exec(request.path) : null;
  if (!match) {
    throw new ValidationError(
      `${request.method.toUpperCase()} ${request.path.slice(0, 100)} needs a Gemini API key credential: a Gemini sign-in credential serves only POST /v1beta/models/<model>:generateContent, :streamGenerateContent and :countTokens (through Code Assist)`,
    );
  }
  const [, model, method] = match as unknown as [string, string, 'generateContent' | 'streamGenerateContent' | 'countTokens'];
  const body = jsonObject(request.body, `POST ${request.path}`);
  const headers = { 'content-type': 'application/json', 'accept-encoding': 'identity' };

  if (method === 'countTokens') {
    // The public API also takes the contents inside a generateContentRequest.
    const inner = body.generateContentRequest as { contents?: unknown } | undefined;
    const contents = body.contents ?? inner?.contents ?? [];
    return {
      path: '/v1internal:countTokens',
      search: '',
      body: Buffer.from(JSON.stringify({ request: { model: `models/${model}`, contents } })),
      headers,
      answer: { contentType: 'application/json', transform: () => collect(unwrapJson) },
    };
  }

  const project = request.auth.type === 'oauth' ? request.auth.project : undefined;
  if (!project) {
    throw new ValidationError('this Gemini sign-in credential has no Code Assist project yet: sign in again, or import it with a project');
  }
  const mapped = Buffer.from(JSON.stringify({ model, project, request: body }));
  if (method === 'generateContent') {
    return {
      path: '/v1internal:generateContent',
      search: '',
      body: mapped,
      headers,
      answer: { contentType: 'application/json', transform: () => collect(unwrapJson) },
    };
  }
  // Always asked as SSE; answered as SSE or as the public API's JSON array, as the client asked.
  const sse = new URLSearchParams(request.search).get('alt') === 'sse';
  return {
    path: '/v1internal:streamGenerateContent',
    search: '?alt=sse',
    body: mapped,
    headers: { ...headers, accept: 'text/event-stream' },
    answer: sse
      ? { contentType: 'text/event-stream', transform: () => mapSse((event) => sseEvent(unwrap(event.data))) }
      : { contentType: 'application/json', transform: jsonArray },
  };
}

/** `{response: X, traceId?}` → X; anything else as it came. */
function unwrap(data: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return data;
  }
  if (typeof parsed === 'object' && parsed !== null && 'response' in parsed) return JSON.stringify(parsed.response);
  return data;
}

function unwrapJson(body: Buffer): string {
  return unwrap(body.toString('utf8'));
}

/** SSE events → `[chunk,\nchunk…]`, streamed as the events come. */
function jsonArray() {
  let count = 0;
  return mapSse(
    (event) => `${count++ === 0 ? '[' : ',\n'}${unwrap(event.data)}`,
    () => (count === 0 ? '[]' : ']'),
  );
}
