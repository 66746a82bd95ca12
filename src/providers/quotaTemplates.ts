// A quota endpoint's templates (QuotaEndpoint: headers and a JSON body with `{accessToken}`,
// `{accountId}`, `{project}`) filled from one credential — and the one rule for "this credential
// cannot be read": a body placeholder without a value (a Gemini sign-in without its Code Assist
// project). The read activity and the read-now route both ask it here.
import type { ProviderMetadata } from '../model/credentials.js';
import type { QuotaEndpoint } from './types.js';

export type QuotaValues = Record<string, string | undefined>;

/** The values a credential gives the templates; the secret's only when it is at hand (the activity). */
export function quotaValues(
  providerMetadata: ProviderMetadata | null | undefined,
  secret?: { accessToken?: string; accountId?: string },
): QuotaValues {
  return { accessToken: secret?.accessToken, accountId: secret?.accountId, project: providerMetadata?.project };
}

/** Templates filled; a template whose placeholder has no value is left out and named in `missing`. */
export function fillTemplates(
  templates: Record<string, string>,
  values: QuotaValues,
): { filled: Record<string, string>; missing: string[] } {
  const filled: Record<string, string> = {};
  const missing: string[] = [];
  for (const [name, template] of Object.entries(templates)) {
    let absent = false;
    const value = template.replace(/\{(\w+)\}/g, (_, key: string) => {
      const v = values[key];
      if (v === undefined || v === '') absent = true;
      return v ?? '';
    });
    if (absent) missing.push(name);
    else filled[name] = value;
  }
  return { filled, missing };
}

/** True when the endpoint's body names a value this credential lacks: nothing can be read for it. */
export function lacksBodyValues(endpoint: QuotaEndpoint, values: QuotaValues): boolean {
  return endpoint.body !== undefined && fillTemplates(endpoint.body, values).missing.length > 0;
}
