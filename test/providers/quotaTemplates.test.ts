import { describe, expect, it } from 'vitest';
import { providerDefaults } from '../../src/providers/registry.js';
import { fillTemplates, lacksBodyValues, quotaValues } from '../../src/providers/quotaTemplates.js';

describe('quota endpoint templates', () => {
  it('fills placeholders and leaves out a template whose value is missing', () => {
    const values = quotaValues({ project: 'proj-1' }, { accessToken: 'tok', accountId: undefined });
    expect(fillTemplates({ authorization: 'Bearer {accessToken}', 'chatgpt-account-id': '{accountId}' }, values)).toEqual({
      filled: { authorization: 'Bearer tok' },
      missing: ['chatgpt-account-id'],
    });
    expect(fillTemplates({ project: '{project}' }, values).filled).toEqual({ project: 'proj-1' });
  });

  it('one rule for "cannot be read": a body placeholder without a value (a Gemini sign-in without its project)', () => {
    const gemini = providerDefaults('gemini').quota!;
    expect(gemini.body).toBeDefined();
    expect(lacksBodyValues(gemini, quotaValues(null))).toBe(true);
    expect(lacksBodyValues(gemini, quotaValues({ project: '' }))).toBe(true);
    expect(lacksBodyValues(gemini, quotaValues({ project: 'proj-1' }))).toBe(false);
    // Endpoints without a body (Anthropic, ChatGPT) can always be read, whatever the metadata.
    const anthropic = providerDefaults('anthropic').quota!;
    expect(lacksBodyValues(anthropic, quotaValues(null))).toBe(false);
  });

  it('judges only the values it was given: without the secret (the read-now route) its placeholders are not missing', () => {
    const endpoint = { ...providerDefaults('gemini').quota!, body: { project: '{project}', token: '{accessToken}' } };
    expect(lacksBodyValues(endpoint, quotaValues({ project: 'proj-1' }))).toBe(false);
    expect(lacksBodyValues(endpoint, quotaValues({ project: 'proj-1' }, { accessToken: undefined }))).toBe(true);
    expect(lacksBodyValues(endpoint, quotaValues({ project: 'proj-1' }, { accessToken: 'tok' }))).toBe(false);
  });
});
