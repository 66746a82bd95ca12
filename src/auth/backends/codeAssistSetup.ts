// The Code Assist project of a Gemini sign-in, found once (at login or import) as the Gemini CLI
// finds it: loadCodeAssist names the project of an account already set up; otherwise onboardUser
// with the account's default tier, a long-running operation asked again until it is done.
import { request, type Dispatcher } from 'undici';
import { ProviderUnavailableError, ReauthRequiredError, ValidationError } from '../../errors.js';
import { baseUrlFor } from '../../providers/registry.js';
import type { ProviderDefinition } from '../../providers/types.js';
import { safeText } from '../../redact.js';

const METADATA = { ideType: 'IDE_UNSPECIFIED', platform: 'PLATFORM_UNSPECIFIED', pluginType: 'GEMINI' } as const;

export interface CodeAssistSetupOptions {
  /** The project the user named (Workspace / Standard and Enterprise tiers need one). */
  project?: string;
  /** Between onboardUser asks while the operation is not done. Default 2 s. */
  pollIntervalMs?: number;
  /** onboardUser asks before giving up. Default 30. */
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
  cloudaicompanionProject?: string;
}

interface Operation {
  done?: boolean;
  response?: { cloudaicompanionProject?: { id?: string } };
}

export async function discoverCodeAssistProject(
  def: ProviderDefinition,
  accessToken: string,
  opts: CodeAssistSetupOptions = {},
): Promise<string> {
  const requested = opts.project?.trim() || undefined;
  const call = (method: string, body: unknown) => callCodeAssist<unknown>(def, accessToken, method, body, opts);
  const loaded = (await call('loadCodeAssist', {
    ...(requested ? { cloudaicompanionProject: requested } : {}),
    metadata: { ...METADATA, ...(requested ? { duetProject: requested } : {}) },
  })) as LoadAnswer;
  if (typeof loaded.cloudaicompanionProject === 'string' && loaded.cloudaicompanionProject) return loaded.cloudaicompanionProject;
  if (loaded.currentTier && requested) return requested;

  const tier = loaded.allowedTiers?.find((t) => t.isDefault) ?? { id: 'legacy-tier', userDefinedCloudaicompanionProject: true };
  if (tier.userDefinedCloudaicompanionProject && !requested) {
    throw new ValidationError(
      'this Google account needs a Google Cloud project for Code Assist: import the credential with "project" (Workspace / Code Assist Standard and Enterprise accounts)',
    );
  }
  const onboard = {
    tierId: tier.id ?? 'legacy-tier',
    ...(requested ? { cloudaicompanionProject: requested } : {}),
    metadata: { ...METADATA, ...(requested ? { duetProject: requested } : {}) },
  };
  const polls = opts.maxPolls ?? 30;
  for (let i = 0; i < polls; i++) {
    if (i > 0) await sleep(opts.pollIntervalMs ?? 2000, opts.signal);
    const operation = (await call('onboardUser', onboard)) as Operation;
    if (operation.done) {
      const id = operation.response?.cloudaicompanionProject?.id ?? requested;
      if (!id) throw new ProviderUnavailableError('Code Assist finished onboarding without naming a project');
      return id;
    }
  }
  throw new ProviderUnavailableError('Code Assist did not finish onboarding this account in time; sign in again later');
}

async function callCodeAssist<T>(
  def: ProviderDefinition,
  accessToken: string,
  method: string,
  body: unknown,
  opts: CodeAssistSetupOptions,
): Promise<T> {
  const userAgent = def.headers.oauth.set['user-agent'];
  let res: Dispatcher.ResponseData;
  try {
    res = await request(`${baseUrlFor(def, 'oauth')}/v1internal:${method}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${accessToken}`,
        'content-type': 'application/json',
        accept: 'application/json',
        ...(userAgent ? { 'user-agent': userAgent } : {}),
      },
      body: JSON.stringify(body),
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
