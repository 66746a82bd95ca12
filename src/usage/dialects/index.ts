// The usage dialects, by the name each ProviderDefinition gives in `usageDialect`: no code here
// or in the framing branches on a provider id.
import type { ProviderId } from '../../model/providers.js';
import { providerDefaults } from '../../providers/registry.js';
import type { UsageDialect } from '../../providers/types.js';
import type { Seen } from '../observation.js';
import { anthropicInterpreter } from './anthropic.js';
import { geminiInterpreter } from './gemini.js';
import type { Interpreter } from './interpreter.js';
import { openaiInterpreter } from './openai.js';

export type { Interpreter } from './interpreter.js';

const DIALECTS: Record<UsageDialect, (seen: Seen) => Interpreter> = {
  anthropic: anthropicInterpreter,
  openai: openaiInterpreter,
  gemini: geminiInterpreter,
};

/** A fresh interpreter of `provider`'s answers (one per answer: it holds that answer's state), writing into `seen`. */
export function interpreterFor(provider: ProviderId, seen: Seen): Interpreter {
  return DIALECTS[providerDefaults(provider).usageDialect](seen);
}
