// The Code Assist project of a Gemini sign-in, found once (at login or import) as the Gemini CLI
// finds it: loadCodeAssist names the project of an account already set up; otherwise onboardUser
// with the account's default tier, a long-running operation read (GET v1internal/<name>) until done.
import { request, type Dispatcher } from 'undici';
import { ProviderUnavailableError, ReauthRequiredError, ValidationError } from '../../errors.js';
import { baseUrlFor } from '../../providers/registry.js';
import type { ProviderDefinition } from '../../providers/types.js';
import { safeText } from '../../redact.js';

const METADATA = { ideType: 'IDE_UNSPECIFIED', platform: 'PLATFORM_UNSPECIFIED', pluginType: 'GEMINI' } as const;

export interface CodeAssistSetupOptions {
  /** The project the user named (Workspace / Standard and Enterprise tiers need one). */
  project?: string;
  /** Between reads of the onboarding operation while it is not done. Default 2 s. */
  pollIntervalMs?: number;
  /** Operation reads before giving up. Default 30. */
  maxPolls?: number;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
}

interface Tier {
  id?: string;
  isDefault?: boolean;
  userDefinedCloudaicompanionProject?: boolean;
}

interface LoadAnswer {
  currentTier?: Tier | null;
  allowedTiers?: Tier[];
  ineligibleTiers?: Array<{ reasonMessage?: unknown }>;
  cloudaicompanionProject?: string;
}

interface Operation {
  name?: string;
  done?: boolean;
  response?: { cloudaicompanionProject?: { id?: string } };
}

export async function discoverCodeAssistProject(
  def: ProviderDefinition,
  accessToken: string,
  opts: CodeAssistSetupOptions = {},
): Promise<string> {
  const requested = opts.project?.trim() || undefined;
  const post = (method: string, body: unknown) => callCodeAssist<unknown>(def, accessToken, 'POST', `:${method}`, body, opts);
  const loaded = (await post('loadCodeAssist', {
    ...(requested ? { cloudaicompanionProject: requested } : {}),
    metadata: { ...METADATA, ...(requested ? { duetProject: requested } : {}) },
  })) as LoadAnswer;
  if (typeof loaded.cloudaicompanionProject === 'string' && loaded.cloudaicompanionProject) return loaded.cloudaicompanionProject;
  if (loaded.currentTier) {
    if (requested) return requested;
    throw projectRequired(loaded);
  }

  const tier = loaded.allowedTiers?.find((t) => t.isDefault) ?? { id: 'legacy-tier', userDefinedCloudaicompanionProject: true };
  if (tier.userDefinedCloudaicompanionProject && !requested) throw projectRequired(loaded);
  // The free tier runs on a project Google manages: naming one there fails the onboarding.
  const project = tier.id === 'free-tier' ? undefined : requested;
  let operation = (await post('onboardUser', {
    tierId: tier.id ?? 'legacy-tier',
    ...(project ? { cloudaicompanionProject: project } : {}),
    metadata: { ...METADATA, ...(project ? { duetProject: project } : {}) },
  })) as Operation;
  for (let polls = 0; !operation.done; polls++) {
    if (polls >= (opts.maxPolls ?? 30)) {
      throw new ProviderUnavailableError('Code Assist did not finish onboarding this account in time; sign in again later');
    }
    if (!operation.name || !OPERATION_NAME.test(operation.name)) {
      throw new ProviderUnavailableError('Code Assist answered onboardUser with an operation Maestro cannot follow');
    }
    await sleep(opts.pollIntervalMs ?? 2000, opts.signal);
    operation = (await callCodeAssist<unknown>(def, accessToken, 'GET', `/${operation.name}`, undefined, opts)) as Operation;
  }
  const id = operation.response?.cloudaicompanionProject?.id ?? requested;
  if (!id) throw projectRequired(loaded);
  return id;
}

/** An operation name as Google's long-running operations spell it, safe to put in a path. */
const OPERATION_NAME = /^operations\/[A-Za-z0-9._-]{1,200}$/;

/** The account cannot use Code Assist without a project of its own (or at all): Google's reasons, when it gave some. */
function projectRequired(loaded: LoadAnswer): ValidationError {
  const reasons = (loaded.ineligibleTiers ?? [])
    .map((t) => t.reasonMessage)
    .filter((m): m is string => typeof m === 'string' && m !== '')
    .map((m) => safeText(m, { max: 200 }));
  return new ValidationError(
    reasons.length > 0
      ? `Code Assist does not serve this Google account: ${reasons.join('; ')}`
      : 'this Google account needs a Google Cloud project for Code Assist: import the credential with "project" (Workspace / Code Assist Standard and Enterprise accounts)',
  );
}

/** `POST <base>/v1internal:<method>` or `GET <base>/v1internal/<operation name>`. */
async function callCodeAssist<T>(
  def: ProviderDefinition,
  accessToken: string,
  verb: 'POST' | 'GET',
  /** `:loadCodeAssist`, `/operations/…` */
  target: string,
  body: unknown,
  opts: CodeAssistSetupOptions,
): Promise<T> {
  const method = target.slice(1).split('/')[0]!;
  const userAgent = def.headers.oauth.set['user-agent'];
  let res: Dispatcher.ResponseData;
  try {
    res = await request(`${baseUrlFor(def, 'oauth')}/v1internal${target}`, {
      method: verb,
      headers: {
        authorization: `Bearer ${accessToken}`,
        accept: 'application/json',
        ...(verb === 'POST' ? { 'content-type': 'application/json' } : {}),
        ...(userAgent ? { 'user-agent': userAgent } : {}),
      },
      body: verb === 'POST' ? JSON.stringify(body) : undefined,
      dispatcher: opts.dispatcher,
      signal: opts.signal,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
  } catch (error) {
    throw new ProviderUnavailableError(`Code Assist ${method} is unreachable: ${(error as Error).message}`);
  }
  const text = await res.body.text();
  if (res.statusCode >= 200 && res.statusCode < 300) {
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ProviderUnavailableError(`Code Assist ${method} answered something that is not JSON`);
    }
  }
  let message = '';
  try {
    message = String((JSON.parse(text) as { error?: { message?: unknown } }).error?.message ?? '');
  } catch {
    /* no JSON error */
  }
  const why = `Code Assist ${method} answered ${res.statusCode}${message ? `: ${safeText(message, { knownSecrets: [accessToken], max: 300 })}` : ''}`;
  if (res.statusCode === 401) throw new ReauthRequiredError(why);
  // Refused for this account (Google no longer accepts the Gemini CLI client for individual accounts).
  if (res.statusCode === 403) throw new ValidationError(`${why}; individual Google accounts can no longer use the Gemini CLI sign-in`);
  if (res.statusCode === 429 || res.statusCode >= 500) throw new ProviderUnavailableError(why);
  throw new ValidationError(why);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ProviderUnavailableError('Code Assist onboarding was cancelled'));
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => (clearTimeout(timer), reject(new ProviderUnavailableError('Code Assist onboarding was cancelled'))),
      {
        once: true,
      },
    );
  });
}
