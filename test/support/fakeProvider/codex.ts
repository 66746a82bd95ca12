// The fake Codex backend (ChatGPT sign-in tokens): POST /backend-api/codex/responses, checked as
// the real one checks it (bearer access token, chatgpt-account-id, originator, OpenAI-Beta, SSE;
// body with store: false, stream: true, an instructions string and an input list) and answered
// with the Responses API's events: response.created … response.output_text.delta … response.completed.
import { CODEX_ORIGINATOR } from '../../../src/providers/openai.js';
import { hex, HttpAnswer, type RecordedRequest } from './wire.js';

export const CODEX_PATH = '/backend-api/codex';

export interface CodexContext {
  accountId: string;
  eventCount: number;
  accessTokenProblem(token: string): string | undefined;
}

/** Fixed counts, so tests can check what usage accounting records. */
export const CODEX_USAGE = { input_tokens: 12, input_tokens_details: { cached_tokens: 2 }, output_tokens: 7, total_tokens: 19 };

export function createCodexSide(ctx: CodexContext) {
  const error = (status: number, message: string) =>
    new HttpAnswer(
      status,
      status === 401 ? { error: { message, type: 'invalid_request_error', code: 'token_expired' } } : { detail: message },
    );

  /** The SSE events of one answer, or the error answer. */
  function handle(req: RecordedRequest): { events: string[] } | HttpAnswer {
    if (req.method !== 'POST' || req.path !== `${CODEX_PATH}/responses`) return new HttpAnswer(404, { detail: 'Not Found' });
    const token = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!token) return error(401, 'Missing bearer authentication');
    const problem = ctx.accessTokenProblem(token);
    if (problem) return error(401, `fake codex: ${problem}`);
    if (req.headers['chatgpt-account-id'] !== ctx.accountId) return error(401, 'fake codex: chatgpt-account-id missing or wrong');
    if (req.headers.originator !== CODEX_ORIGINATOR) return error(400, `fake codex: originator must be ${CODEX_ORIGINATOR}`);
    if (req.headers['openai-beta'] !== 'responses=experimental')
      return error(400, 'fake codex: OpenAI-Beta: responses=experimental is required');
    if (!String(req.headers.accept ?? '').includes('text/event-stream'))
      return error(400, 'fake codex: accept must allow text/event-stream');
    const body = req.json as Record<string, unknown> | undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return error(400, 'fake codex: body must be a JSON object');
    if (body.store !== false) return error(400, 'Store must be set to false');
    if (body.stream !== true) return error(400, 'Stream must be set to true');
    if (typeof body.instructions !== 'string') return error(400, 'Instructions are required');
    if (typeof body.model !== 'string') return error(400, 'fake codex: model is required');
    if (!Array.isArray(body.input)) return error(400, 'fake codex: input must be a list');
    return { events: events(body.model) };
  }

  function events(model: string): string[] {
    const id = `resp_fake${hex(8)}`;
    const itemId = `msg_fake${hex(8)}`;
    let seq = 0;
    const ev = (type: string, data: Record<string, unknown>) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
    const base = { id, object: 'response', created_at: Math.floor(Date.now() / 1000), model };
    const text = Array.from({ length: ctx.eventCount }, (_, i) => `chunk ${i} `);
    const message = {
      type: 'message',
      id: itemId,
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: text.join(''), annotations: [] }],
    };
    return [
      ev('response.created', { response: { ...base, status: 'in_progress', output: [], usage: null } }),
      ev('response.output_item.added', { output_index: 0, item: { ...message, status: 'in_progress', content: [] } }),
      ...text.map((delta) => ev('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta })),
      ev('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text: text.join('') }),
      ev('response.output_item.done', { output_index: 0, item: message }),
      ev('response.completed', { response: { ...base, status: 'completed', output: [message], usage: CODEX_USAGE } }),
    ];
  }

  return { handle };
}
