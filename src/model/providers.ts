// The providers Maestro knows, by id. Workflow-safe (no Node imports): every floor may use it.
export const PROVIDER_IDS = ['anthropic', 'openai', 'gemini'] as const;
export type ProviderId = (typeof PROVIDER_IDS)[number];
