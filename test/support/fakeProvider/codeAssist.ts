// The fake Code Assist backend (Gemini CLI sign-in tokens): POST /v1internal:{method} with a
// bearer access token. loadCodeAssist / onboardUser (a long-running operation read with
// GET /v1internal/operations/<id>, not done for the first `onboardPolls` answers) set up the account's project; generateContent, streamGenerateContent
// (SSE only, with ?alt=sse) and countTokens check the Code Assist body shape
// ({model, project, request} / {request: {model: "models/<m>", contents}}) and answer wrapped in `response`.
import { hex, HttpAnswer, type RecordedRequest } from './wire.js';

export interface CodeAssistOptions {
  /** `existing`: loadCodeAssist names the project at once; `onboard`: the account must be onboarded first. Default existing. */
  setup?: 'existing' | 'onboard';
  /** The onboarding operation answers not done this many times first. Default 1. */
  onboardPolls?: number;
  /** The account's project. Default a random `fake-project-…`. */
  project?: string;
}

export interface CodeAssistContext extends CodeAssistOptions {
  eventCount: number;
  accessTokenProblem(token: string): string | undefined;
}

/** Fixed counts, so tests can check what usage accounting records. */
export const CODE_ASSIST_USAGE = { promptTokenCount: 11, candidatesTokenCount: 6, totalTokenCount: 17, cachedContentTokenCount: 3 };

const METADATA = { ideType: 'IDE_UNSPECIFIED', platform: 'PLATFORM_UNSPECIFIED', pluginType: 'GEMINI' };

export function createCodeAssistSide(ctx: CodeAssistContext) {
  const project = ctx.project ?? `fake-project-${hex(4)}`;
  let onboarded = (ctx.setup ?? 'existing') === 'existing';
  let pollsLeft = ctx.onboardPolls ?? 1;
  const calls: Record<string, number> = {};
  const OPERATION = 'operations/onboard-fake';
  let onboarding = false;

  /** The onboarding operation: not done for the first `onboardPolls` answers, then done with the project. */
  function operationAnswer(): HttpAnswer {
    if (pollsLeft-- > 0) return new HttpAnswer(200, { name: OPERATION, done: false });
    onboarded = true;
    return new HttpAnswer(200, {
      name: OPERATION,
      done: true,
      response: {
        '@type': 'type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse',
        cloudaicompanionProject: { id: project, name: project },
      },
    });
  }

  const error = (status: number, message: string) =>
    new HttpAnswer(status, {
      error: { code: status, message, status: status === 401 ? 'UNAUTHENTICATED' : status === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT' },
    });

  const chunk = (text: string, last: boolean) => ({
    candidates: [{ content: { role: 'model', parts: [{ text }] }, ...(last ? { finishReason: 'STOP' } : {}), index: 0 }],
    usageMetadata: CODE_ASSIST_USAGE,
    modelVersion: 'gemini-fake',
  });

  const sameMetadata = (m: unknown) =>
    typeof m === 'object' && m !== null && Object.entries(METADATA).every(([k, v]) => (m as Record<string, unknown>)[k] === v);

  /** The JSON answer, SSE events, or the error answer. */
  function handle(req: RecordedRequest): HttpAnswer | { events: string[] } {
    const operation = req.method === 'GET' ? /^\/v1internal\/(operations\/[\w-]+)$/.exec(req.path)?.[1] : undefined;
    const method = operation ? 'getOperation' : req.method === 'POST' ? /^\/v1internal:(\w+)$/.exec(req.path)?.[1] : undefined;
    if (!method) return error(404, `fake code assist: no route ${req.method} ${req.path}`);
    calls[method] = (calls[method] ?? 0) + 1;
    const token = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!token || ctx.accessTokenProblem(token)) return error(401, 'Request had invalid authentication credentials.');
    if (operation) {
      if (operation !== OPERATION || !onboarding) return error(404, `fake code assist: no operation ${operation}`);
      return operationAnswer();
    }
    if (req.headers['x-goog-api-key'] !== undefined) return error(400, 'fake code assist: an API key reached Code Assist');
    const body = req.json as Record<string, unknown> | undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return error(400, 'fake code assist: body must be a JSON object');

    switch (method) {
      case 'loadCodeAssist':
        if (!sameMetadata(body.metadata)) return error(400, 'fake code assist: loadCodeAssist metadata is wrong');
        return new HttpAnswer(
          200,
          onboarded
            ? { currentTier: { id: 'free-tier' }, allowedTiers: [{ id: 'free-tier', isDefault: true }], cloudaicompanionProject: project }
            : {
                allowedTiers: [
                  { id: 'free-tier', isDefault: true, userDefinedCloudaicompanionProject: false },
                  { id: 'standard-tier', userDefinedCloudaicompanionProject: true },
                ],
              },
        );
      case 'onboardUser':
        // The free tier runs on a managed project: naming one is a failed precondition.
        if (body.tierId !== 'free-tier' || !sameMetadata(body.metadata) || 'cloudaicompanionProject' in body) {
          return error(400, 'fake code assist: onboardUser body is wrong');
        }
        onboarding = true;
        return operationAnswer();
      case 'countTokens': {
        const request = body.request as { model?: unknown; contents?: unknown } | undefined;
        if (Object.keys(body).join() !== 'request' || typeof request?.model !== 'string' || !request.model.startsWith('models/')) {
          return error(400, 'fake code assist: countTokens takes {request: {model: "models/<m>", contents}}');
        }
        if (!Array.isArray(request.contents)) return error(400, 'fake code assist: countTokens contents must be a list');
        return new HttpAnswer(200, { totalTokens: 7 });
      }
      case 'generateContent':
      case 'streamGenerateContent': {
        if (typeof body.model !== 'string' || body.model.startsWith('models/'))
          return error(400, 'fake code assist: model must be a bare model name');
        if (!onboarded || body.project !== project)
          return error(403, `fake code assist: project ${String(body.project)} is not this account's`);
        const request = body.request as { contents?: unknown } | undefined;
        if (typeof request !== 'object' || request === null || !Array.isArray(request.contents)) {
          return error(400, 'fake code assist: request must be a public GenerateContentRequest');
        }
        const traceId = hex(8);
        if (method === 'generateContent') return new HttpAnswer(200, { response: chunk('Hello from the fake code assist', true), traceId });
        if (new URLSearchParams(req.search).get('alt') !== 'sse') return error(400, 'fake code assist: streams need ?alt=sse');
        return {
          events: Array.from(
            { length: ctx.eventCount },
            (_, i) => `data: ${JSON.stringify({ response: chunk(`chunk ${i} `, i === ctx.eventCount - 1), traceId })}\r\n\r\n`,
          ),
        };
      }
      default:
        return error(404, `fake code assist: unknown method ${method}`);
    }
  }

  return { handle, project, calls: () => ({ ...calls }) };
}
