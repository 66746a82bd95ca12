// The inference paths a client key may call, per provider: exact matches on the raw path, so
// nothing a provider could normalise into another endpoint gets through.
import { describe, expect, it } from 'vitest';
import { isInferencePath } from '../../src/providers/inferencePaths.js';
import { ProviderRegistry } from '../../src/providers/registry.js';

const providers = new ProviderRegistry({ providers: { anthropic: {}, openai: {}, gemini: {} } });

describe('inference paths', () => {
  it.each([
    ['anthropic', 'POST', '/v1/messages', true],
    ['anthropic', 'POST', '/v1/messages/count_tokens', true],
    ['anthropic', 'GET', '/v1/models', true],
    ['anthropic', 'GET', '/v1/models/claude-sonnet-4-5-20250929', true],
    ['anthropic', 'GET', '/v1/messages', false],
    ['anthropic', 'POST', '/v1/messages/', false],
    ['anthropic', 'POST', '/v1/messages/batches', false],
    ['anthropic', 'GET', '/v1/organizations/me', false],
    ['anthropic', 'POST', '/v1/organizations/o/api_keys', false],
    ['anthropic', 'GET', '/v1/models/..', false],
    ['anthropic', 'GET', '/v1/models/.hidden', false],
    ['anthropic', 'GET', '/v1/models/%2e%2e', false],
    ['anthropic', 'GET', '/v1/models/a/b', false],
    ['anthropic', 'GET', '//v1/models', false],
    ['anthropic', 'POST', '/V1/MESSAGES', false],
    ['openai', 'POST', '/v1/chat/completions', true],
    ['openai', 'POST', '/v1/responses', true],
    ['openai', 'POST', '/v1/embeddings', true],
    ['openai', 'GET', '/v1/models/ft:gpt-4o-mini:acme::abc123', true],
    ['openai', 'POST', '/v1/files', false],
    ['openai', 'GET', '/v1/organization/admin_api_keys', false],
    ['openai', 'DELETE', '/v1/models/ft:gpt-4o-mini:acme::abc123', false],
    ['gemini', 'POST', '/v1beta/models/gemini-2.5-pro:generateContent', true],
    ['gemini', 'POST', '/v1beta/models/gemini-2.5-pro:streamGenerateContent', true],
    ['gemini', 'POST', '/v1/models/gemini-2.5-flash:countTokens', true],
    ['gemini', 'GET', '/v1beta/models', true],
    ['gemini', 'GET', '/v1beta/models/gemini-2.5-pro', true],
    ['gemini', 'POST', '/v1beta/tunedModels', false],
    ['gemini', 'POST', '/v1beta/models/gemini-2.5-pro:generateContent/../../files', false],
    ['gemini', 'POST', '/v1beta/files', false],
  ] as const)('%s %s %s → %s', (provider, method, path, allowed) => {
    expect(isInferencePath(providers.get(provider), method, path)).toBe(allowed);
  });
});
