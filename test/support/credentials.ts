// The one credential-seeding helper: an Anthropic OAuth credential whose tokens the fake provider
// accepts, stored as the API stores it, with its refresh workflow started (unless told not to).
import type { Core } from '../../src/app/services.js';
import type { CredentialMetadata } from '../../src/db/credentials.js';
import type { FakeProvider } from './fakeProvider.js';

export interface SeededCredential {
  credential: CredentialMetadata;
  accessToken: string;
  refreshToken: string;
}

export async function seedOAuthCredential(
  deps: { core: Pick<Core, 'store' | 'workflows'>; fake: Pick<FakeProvider, 'seedTokens'> },
  opts: {
    /** Makes the tokens unique and recognisable: `sk-ant-oat01-<tag>-0000000000`. */
    tag: string;
    name?: string;
    /** How long the access token has left; null: no known expiry. Default one hour. */
    lifetimeMs?: number | null;
    /** false: an access token only (nothing to refresh with). */
    refreshToken?: boolean;
    /** false: store only; the test starts (or deliberately does not start) the workflow. */
    start?: boolean;
  },
): Promise<SeededCredential> {
  const accessToken = `sk-ant-oat01-${opts.tag}-0000000000`;
  const refreshToken = `sk-ant-ort01-${opts.tag}-0000000000`;
  deps.fake.seedTokens(refreshToken, accessToken);
  const lifetimeMs = opts.lifetimeMs === undefined ? 3600_000 : opts.lifetimeMs;
  const credential = await deps.core.store.create({
    provider: 'anthropic',
    authType: 'oauth',
    name: opts.name ?? opts.tag,
    secret: opts.refreshToken === false ? { accessToken } : { accessToken, refreshToken },
    expiresAt: lifetimeMs === null ? null : new Date(Date.now() + lifetimeMs),
  });
  if (opts.start !== false) await deps.core.workflows.start(credential);
  return { credential, accessToken, refreshToken };
}
