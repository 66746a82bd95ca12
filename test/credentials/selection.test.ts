// Which credential a call uses, decided without a database (src/credentials/selection.ts).
import { describe, expect, it } from 'vitest';
import { chooseById, chooseByName, chooseOnly, selectorKind } from '../../src/credentials/selection.js';
import { NotFoundError, ReauthRequiredError } from '../../src/errors.js';

const cred = (id: string, status: 'active' | 'reauth_required' | 'disabled' = 'active') => ({ id, provider: 'anthropic' as const, status });

describe('credential selection', () => {
  it('reads a selector as an id in any case, else as a name (default when none)', () => {
    expect(selectorKind('3F2504E0-4F89-41D3-9A0C-0305E82C3301')).toEqual({ id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301' });
    expect(selectorKind('work')).toEqual({ name: 'work' });
    expect(selectorKind(undefined)).toEqual({ name: 'default' });
  });

  it('an id serves only its own provider', () => {
    expect(chooseById('anthropic', 'x', cred('x'))).toBe('x');
    expect(() => chooseById('openai', 'x', cred('x'))).toThrow(NotFoundError);
  });

  it("a name's OAuth credential while it can serve, else its API key only with the fallback", () => {
    expect(chooseByName('anthropic', 'w', { oauth: cred('o'), apiKey: cred('k') }, false)).toBe('o');
    expect(chooseByName('anthropic', 'w', { oauth: cred('o', 'reauth_required'), apiKey: undefined }, false)).toBe('o'); // answered 409 later
    expect(chooseByName('anthropic', 'w', { oauth: cred('o', 'reauth_required'), apiKey: cred('k') }, true)).toBe('k');
    expect(() => chooseByName('anthropic', 'w', { oauth: cred('o', 'reauth_required'), apiKey: cred('k') }, false)).toThrow(
      ReauthRequiredError,
    );
    expect(chooseByName('anthropic', 'w', { oauth: undefined, apiKey: cred('k') }, false)).toBe('k');
    expect(() => chooseByName('anthropic', 'w', { oauth: undefined, apiKey: undefined }, false)).toThrow(
      /no anthropic credential named "w"/,
    );
    expect(chooseByName('anthropic', undefined, { oauth: undefined, apiKey: undefined }, false)).toBeUndefined();
  });

  it("without a default, the provider's only credential; several or none is a clear 404", () => {
    expect(chooseOnly('anthropic', [cred('a')])).toBe('a');
    expect(() => chooseOnly('anthropic', [cred('a'), cred('b')])).toThrow(/several credentials and none named "default"/);
    expect(() => chooseOnly('anthropic', [])).toThrow(/no anthropic credential: add one/);
  });
});
