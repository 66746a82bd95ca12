// The sign-in backends' answer mapping on its own: SSE split anywhere, CRLF or LF, events mapped
// one by one as they arrive; Codex's final Response picked from the stream; bad bodies refused.
import { describe, expect, it } from 'vitest';
import { mapRequest } from '../../../src/auth/backends/index.js';
import { finalAnswer } from '../../../src/auth/backends/codex.js';
import { mapWhole, SseParser } from '../../../src/auth/backends/sse.js';
import { ValidationError } from '../../../src/errors.js';

const oauth = { type: 'oauth', accessToken: 't', project: 'p-1' } as const;

describe('SseParser', () => {
  it('reads events split at any byte, CRLF or LF, multi-line data, comments skipped', () => {
    const text = ': keep-alive\r\n\r\nevent: a\r\ndata: {"x":1}\r\n\r\ndata: line1\ndata: line2\n\ndata: é\n\n';
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut += 3) {
      const parser = new SseParser();
      const events = [...parser.push(bytes.subarray(0, cut)), ...parser.push(bytes.subarray(cut)), ...parser.end()];
      expect(events).toEqual([{ event: 'a', data: '{"x":1}' }, { data: 'line1\nline2' }, { data: 'é' }]);
    }
  });
});

describe('Code Assist answers', () => {
  const stream = (search: string) =>
    mapRequest('code-assist', {
      method: 'POST',
      path: '/v1beta/models/g:streamGenerateContent',
      search,
      body: Buffer.from('{}'),
      auth: oauth,
    })!;
  const upstream = Buffer.from([1, 2, 3].map((i) => `data: ${JSON.stringify({ response: { n: i }, traceId: 'tr' })}\r\n\r\n`).join(''));

  it('SSE: each event unwrapped from response', async () => {
    const out = (await mapWhole(upstream, stream('?alt=sse').answer!.transform())).toString();
    expect(out).toBe('data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\n');
  });

  it('no alt=sse: the public JSON array, and [] for an empty stream', async () => {
    const mapping = stream('').answer!;
    expect(JSON.parse((await mapWhole(upstream, mapping.transform())).toString())).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect((await mapWhole(Buffer.alloc(0), mapping.transform())).toString()).toBe('[]');
  });

  it('refuses a body that is not a JSON object, and a generate call without a project', () => {
    const call = (body: string, auth: typeof oauth | { type: 'oauth'; accessToken: string } = oauth) =>
      mapRequest('code-assist', { method: 'POST', path: '/v1beta/models/g:generateContent', search: '', body: Buffer.from(body), auth });
    expect(() => call('[1]')).toThrow(ValidationError);
    expect(() => call('{"contents":[]}', { type: 'oauth', accessToken: 't' })).toThrow(/no Code Assist project/);
  });
});

describe('Codex answers', () => {
  const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

  it('the Response of the final event (completed or incomplete); a failed stream is an error answer with an error status', () => {
    const answer = (text: string) => finalAnswer(Buffer.from(text));
    const stream =
      ev('response.created', { response: { status: 'in_progress' } }) +
      ev('response.completed', { response: { id: 'r', status: 'completed' } });
    expect(JSON.parse(answer(stream) as string)).toEqual({ id: 'r', status: 'completed' });
    expect(JSON.parse(answer(ev('response.incomplete', { response: { status: 'incomplete' } })) as string)).toEqual({
      status: 'incomplete',
    });
    expect(answer(ev('response.failed', { response: { status: 'failed', error: { code: 'server_error', message: 'broke' } } }))).toEqual({
      status: 502,
      body: JSON.stringify({ error: { type: 'server_error', code: 'server_error', message: 'broke' } }),
    });
    // An error event: its status when it names one, the error under `error` or at the top.
    expect(answer(ev('error', { error: { type: 'usage_limit_reached', message: 'limit', status: 429 } }))).toEqual({
      status: 429,
      body: JSON.stringify({ error: { type: 'usage_limit_reached', message: 'limit' } }),
    });
    expect(answer(ev('error', { code: 'bad', message: 'no', status: 200 }))).toMatchObject({ status: 502 });
    const none = answer(ev('response.created', { response: {} })) as { status: number; body: string };
    expect(none.status).toBe(502);
    expect(JSON.parse(none.body)).toEqual({
      error: { type: 'provider_error', message: 'the Codex backend ended its stream without a final response event' },
    });
  });

  it('keeps the client instructions, forces store false and stream true', () => {
    const mapped = mapRequest('codex', {
      method: 'post',
      path: '/v1/responses',
      search: '?x=1',
      body: Buffer.from('{"model":"m","input":[],"instructions":"mine","store":true,"stream":false}'),
      auth: oauth,
    })!;
    expect(mapped.path).toBe('/responses');
    expect(mapped.search).toBe('');
    expect(JSON.parse(mapped.body!.toString())).toEqual({ model: 'm', input: [], instructions: 'mine', store: false, stream: true });
    expect(mapped.answer?.contentType).toBe('application/json');
  });
});
