// Matching a proxied request against a provider's inference paths (provider data): what a client
// key may call. The match is on the raw path exactly as it will be forwarded, so anything a
// provider might normalise into another path (dot segments, escapes, doubled slashes) never matches.
import type { InferencePath, ProviderDefinition } from './types.js';

const MODEL_SEGMENT = '[A-Za-z0-9][A-Za-z0-9._:-]*';
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function compile(path: InferencePath): { methods: ReadonlySet<string>; re: RegExp; usage: InferencePath['usage'] } {
  const source = path.path.split('{model}').map(escape).join(MODEL_SEGMENT);
  return { methods: new Set(path.methods), re: new RegExp(`^${source}$`), usage: path.usage };
}

const compiled = new WeakMap<ProviderDefinition, ReturnType<typeof compile>[]>();

/** True when `method path` (path without the query) is one of the provider's inference paths. */
export function isInferencePath(def: ProviderDefinition, method: string, path: string): boolean {
  return rulesOf(def).some((r) => r.methods.has(method) && r.re.test(path));
}

/** How the provider reports the tokens of `method path` (InferencePath.usage); undefined when the call is not metered. */
export function usageReporting(def: ProviderDefinition, method: string, path: string): InferencePath['usage'] {
  return rulesOf(def).find((r) => r.usage !== undefined && r.methods.has(method) && r.re.test(path))?.usage;
}

function rulesOf(def: ProviderDefinition): ReturnType<typeof compile>[] {
  let rules = compiled.get(def);
  if (!rules) compiled.set(def, (rules = def.inferencePaths.map(compile)));
  return rules;
}

/** The inference paths as a caller reads them, for error messages. */
export const describeInferencePaths = (def: ProviderDefinition) =>
  def.inferencePaths.map((p) => `${p.methods.join('|')} ${p.path}`).join(', ');
