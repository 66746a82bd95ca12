// A quota endpoint's templates (QuotaEndpoint: headers and a JSON body with `{accessToken}`,
// `{accountId}`, `{project}`) filled from one credential — and the one rule for "this credential
// cannot be read": a body placeholder without a value (a Gemini sign-in without its Code Assist
// project). The read activity and the read-now route both ask it here.
import type { ProviderMetadata } from '../model/credentials.js';
import type { QuotaEndpoint } from './types.js';

export type QuotaValues = Record<string, string | undefined>;

/** A `{name}` placeholder (global: replace and matchAll take every one). */
const PLACEHOLDER = /\{(\w+)\}/g;

/**
 * The values a credential gives the templates. The secret's only when it is at hand (the
 * activity); without it its placeholders are not values at all, so they are not judged missing.
 */
export function quotaValues(
  providerMetadata: ProviderMetadata | null | undefined,
  secret?: { accessToken?: string; accountId?: string },
): QuotaValues {
  const values: QuotaValues = { project: providerMetadata?.project };
  if (secret) Object.assign(values, { accessToken: secret.accessToken, accountId: secret.accountId });
  return values;
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
    const value = template.replace(PLACEHOLDER, (_, key: string) => {
      const v = values[key];
      if (v === undefined || v === '') absent = true;
      return v ?? '';
    });
    if (absent) missing.push(name);
    else filled[name] = value;
  }
  return { filled, missing };
}

/**
 * True when the endpoint's body names a value this credential lacks: nothing can be read for it.
 * Only the placeholders `values` knows are judged (the read-now route knows the metadata, not the secret).
 */
export function lacksBodyValues(endpoint: QuotaEndpoint, values: QuotaValues): boolean {
  return Object.values(endpoint.body ?? {}).some((template) =>
    [...template.matchAll(PLACEHOLDER)].some(([, key]) => key! in values && !values[key!]),
  );
}
