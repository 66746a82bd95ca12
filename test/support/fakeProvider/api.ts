// The fake provider's API side: routes, authentication (API key or an OAuth access token the
// OAuth side accepts), the provider-specific checks and error shapes, and the answers (JSON or SSE events).
import type { ProviderId } from '../../../src/config.js';
import { ANTHROPIC_OAUTH_BETA, CLAUDE_CODE_SYSTEM_PROMPT } from '../../../src/providers/anthropic.js';
import { hex, HttpAnswer, type ApiAuth, type RecordedRequest } from './wire.js';

export interface ApiContext {
  provider: ProviderId;
  /** The API key the API endpoints accept. */
  apiKey: string;
  /** openai: the chatgpt-account-id an OAuth call must carry. */
  accountId: string;
  /** Content events per streamed answer (and chunks in a gemini JSON array). */
  eventCount: number;
  /** anthropic OAuth: refuse /v1/messages whose first system block is not Claude Code's. */
  requireClaudeCodeSystem: boolean;
  /** Why an access token would be refused now, or undefined when it is accepted. */
  accessTokenProblem(token: string): string | undefined;
}

export type ApiRoute = { kind: 'json' | 'stream' | 'count' | 'gemini-array' };

export function createApiSide(ctx: ApiContext) {
  const { provider, apiKey, accountId, eventCount, requireClaudeCodeSystem, accessTokenProblem } = ctx;

  function apiError(status: number, message: string, type = 'authentication_error'): HttpAnswer {
    switch (provider) {
      case 'anthropic':
        return new HttpAnswer(status, { type: 'error', error: { type, message } });
      case 'openai':
        return new HttpAnswer(status, {
          error: {
            message,
            type: status === 401 ? 'invalid_request_error' : type,
            param: null,
            code: status === 401 ? 'invalid_api_key' : null,
          },
        });
      case 'gemini':
        return new HttpAnswer(status, {
          error: { code: status, message, status: status === 401 ? 'UNAUTHENTICATED' : 'INVALID_ARGUMENT' },
        });
    }
  }

  function bearer(req: RecordedRequest): string | undefined {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer (.+)$/.exec(header) : null;
    return match?.[1];
  }

  function authenticate(req: RecordedRequest): ApiAuth | HttpAnswer {
    const token = bearer(req);
    if (provider === 'anthropic') {
      const key = req.headers['x-api-key'];
      if (key !== undefined && req.headers.authorization !== undefined)
        return apiError(400, 'fake: both x-api-key and authorization sent', 'invalid_request_error');
      if (key !== undefined) return key === apiKey ? 'api_key' : apiError(401, 'invalid x-api-key');
      if (!token) return apiError(401, 'x-api-key header is required');
      const problem = accessTokenProblem(token);
      if (problem) return apiError(401, problem);
      const betas = String(req.headers['anthropic-beta'] ?? '')
        .split(',')
        .map((b) => b.trim());
      if (!betas.includes(ANTHROPIC_OAUTH_BETA)) return apiError(401, 'OAuth authentication is currently not supported.');
      return 'oauth';
    }
    if (provider === 'openai') {
      if (!token) return apiError(401, 'You did not provide an API key.');
      if (token === apiKey) return 'api_key';
      const problem = accessTokenProblem(token);
      if (problem) return apiError(401, problem);
      if (req.headers['chatgpt-account-id'] !== accountId) return apiError(401, 'fake: chatgpt-account-id missing or wrong');
      return 'oauth';
    }
    if (new URLSearchParams(req.search).has('key')) return apiError(400, 'fake: an API key in the query string reached the provider');
    const key = req.headers['x-goog-api-key'];
    if (key !== undefined) return key === apiKey ? 'api_key' : apiError(400, 'API key not valid. Please pass a valid API key.');
    if (!token) return apiError(401, 'Request is missing required authentication credential.');
    const problem = accessTokenProblem(token);
    if (problem) return apiError(401, 'Request had invalid authentication credentials.');
    return 'oauth';
  }

  function route(req: RecordedRequest): ApiRoute | undefined {
    if (req.method !== 'POST') return undefined;
    const wantsStream = (req.json as { stream?: unknown } | undefined)?.stream === true;
    if (provider === 'anthropic') {
      if (req.path === '/v1/messages') return { kind: wantsStream ? 'stream' : 'json' };
      if (req.path === '/v1/messages/count_tokens') return { kind: 'count' };
    } else if (provider === 'openai') {
      if (req.path === '/v1/chat/completions' || req.path === '/v1/responses') return { kind: wantsStream ? 'stream' : 'json' };
    } else {
      const match = /^\/v1beta\/models\/[A-Za-z0-9._-]+:(generateContent|streamGenerateContent)$/.exec(req.path);
      if (match?.[1] === 'generateContent') return { kind: 'json' };
      if (match) return { kind: new URLSearchParams(req.search).get('alt') === 'sse' ? 'stream' : 'gemini-array' };
    }
    return undefined;
  }

  function textChunk(i: number): string {
    return `chunk ${i} `;
  }

  function completion(): unknown {
    const text = `Hello from the fake ${provider}`;
    switch (provider) {
      case 'anthropic':
        return {
          id: `msg_fake${hex(8)}`,
          type: 'message',
          role: 'assistant',
          model: 'claude-fake',
          content: [{ type: 'text', text }],
          stop_reason: 'end_turn',
          stop_sequence: null,
          usage: { input_tokens: 10, output_tokens: 5 },
        };
      case 'openai':
        return {
          id: `chatcmpl-fake${hex(8)}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: 'gpt-fake',
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        };
      case 'gemini':
        return geminiChunk(text, true);
    }
  }

  function geminiChunk(text: string, last: boolean): unknown {
    return {
      candidates: [{ content: { parts: [{ text }], role: 'model' }, ...(last ? { finishReason: 'STOP' } : {}), index: 0 }],
      usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 },
      modelVersion: 'gemini-fake',
    };
  }

  /**
   * The events of a streamed answer, each a complete SSE event. OpenAI chat completions report the
   * usage only when asked (`stream_options.include_usage`): then every chunk says `"usage":null`
   * and a last chunk with no choices carries it, as the real API does.
   */
  function sseEvents(request?: unknown): string[] {
    const ev = (event: string | undefined, data: unknown) =>
      `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
    const out: string[] = [];
    if (provider === 'anthropic') {
      out.push(
        ev('message_start', {
          type: 'message_start',
          message: {
            id: `msg_fake${hex(8)}`,
            type: 'message',
            role: 'assistant',
            model: 'claude-fake',
            content: [],
            stop_reason: null,
            usage: { input_tokens: 10, output_tokens: 0 },
          },
        }),
      );
      out.push(ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
      for (let i = 0; i < eventCount; i++) {
        out.push(ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: textChunk(i) } }));
      }
      out.push(ev('content_block_stop', { type: 'content_block_stop', index: 0 }));
      out.push(
        ev('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: { output_tokens: eventCount },
        }),
      );
      out.push(ev('message_stop', { type: 'message_stop' }));
    } else if (provider === 'openai') {
      const options = (request as { stream_options?: { include_usage?: unknown } } | undefined)?.stream_options;
      const includeUsage = options?.include_usage === true;
      const chunk = (choices: unknown[], usage?: unknown) => ({
        id: 'chatcmpl-fake',
        object: 'chat.completion.chunk',
        model: 'gpt-fake',
        choices,
        ...(includeUsage ? { usage: usage ?? null } : {}),
      });
      for (let i = 0; i < eventCount; i++) {
        out.push(
          ev(undefined, chunk([{ index: 0, delta: { content: textChunk(i) }, finish_reason: i === eventCount - 1 ? 'stop' : null }])),
        );
      }
      if (includeUsage)
        out.push(ev(undefined, chunk([], { prompt_tokens: 10, completion_tokens: eventCount, total_tokens: 10 + eventCount })));
      out.push(ev(undefined, '[DONE]'));
    } else {
      for (let i = 0; i < eventCount; i++) out.push(ev(undefined, geminiChunk(textChunk(i), i === eventCount - 1)));
    }
    return out;
  }

  /** The answer to a checked, non-streamed call. */
  function answer(r: ApiRoute, auth: ApiAuth): HttpAnswer {
    const body =
      r.kind === 'gemini-array'
        ? Array.from({ length: eventCount }, (_, i) => geminiChunk(textChunk(i), i === eventCount - 1))
        : r.kind === 'count'
          ? { input_tokens: 10 }
          : completion();
    return new HttpAnswer(200, body, { 'x-fake-auth': auth });
  }

  /** Route, authentication and provider checks: what to answer with, or the error answer. */
  function handleApiChecks(req: RecordedRequest): { auth: ApiAuth; route: ApiRoute } | HttpAnswer {
    const r = route(req);
    if (!r) return apiError(404, `fake ${provider}: no route ${req.method} ${req.path}`, 'not_found_error');
    const auth = authenticate(req);
    if (auth instanceof HttpAnswer) return auth;
    if (provider === 'anthropic') {
      if (!req.headers['anthropic-version']) return apiError(400, 'anthropic-version: header is required', 'invalid_request_error');
      if (auth === 'oauth' && requireClaudeCodeSystem && req.path === '/v1/messages') {
        const system = (req.json as { system?: unknown } | undefined)?.system;
        const first = Array.isArray(system) ? (system[0] as { type?: unknown; text?: unknown } | undefined) : undefined;
        if (first?.type !== 'text' || first.text !== CLAUDE_CODE_SYSTEM_PROMPT) {
          return apiError(400, 'fake: OAuth /v1/messages must start with the Claude Code system block', 'invalid_request_error');
        }
      }
    }
    if (req.json === undefined) return apiError(400, `fake ${provider}: body must be JSON`, 'invalid_request_error');
    return { auth, route: r };
  }

  return { handleApiChecks, sseEvents, answer };
}
