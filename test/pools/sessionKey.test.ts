// The session id comes from where Claude Code (every version) and other clients put it, in that
// order, and is only ever stored hashed and namespaced by key.
import { describe, expect, it } from 'vitest';
import { sessionIdOf, sessionKeyOf } from '../../src/pools/sessionKey.js';

const SESSION = '3f2b9c1e-7d4a-4e8b-9f6c-1a2b3c4d5e6f';
const body = (metadata: unknown) =>
  Buffer.from(
    JSON.stringify({
      model: 'claude-sonnet-4-5-20250929',
      max_tokens: 32000,
      system: [{ type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." }],
      messages: [{ role: 'user', content: 'hi' }],
      metadata,
      stream: true,
    }),
  );
// Claude Code ≥ 2.1.78: metadata.user_id is a JSON string.
const jsonUserId = JSON.stringify({
  device_id: 'c5f1a1d4b0e9d7f3a2b8c6e4f0a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1',
  account_uuid: '6a1e9c1d-2b3f-4c5d-8e9f-0a1b2c3d4e5f',
  session_id: SESSION,
});
// Older Claude Code: user_<sha256 of the device id>_account_<account uuid, possibly empty>_session_<uuid>.
const legacyUserId = `user_c5f1a1d4b0e9d7f3a2b8c6e4f0a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1_account_6a1e9c1d-2b3f-4c5d-8e9f-0a1b2c3d4e5f_session_${SESSION}`;
const legacyNoAccount = `user_c5f1a1d4b0e9d7f3a2b8c6e4f0a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1_account__session_${SESSION}`;

describe('sessionIdOf', () => {
  it('x-claude-code-session-id wins over the body and x-maestro-session', () => {
    expect(sessionIdOf({ 'x-claude-code-session-id': 'hdr-session', 'x-maestro-session': 'maestro' }, body({ user_id: jsonUserId }))).toBe(
      'hdr-session',
    );
  });

  it('the JSON form of metadata.user_id (Claude Code ≥ 2.1.78)', () => {
    expect(sessionIdOf({ 'x-maestro-session': 'maestro' }, body({ user_id: jsonUserId }))).toBe(SESSION);
  });

  it('the older user_…_account_…_session_<uuid> form, with or without an account', () => {
    expect(sessionIdOf({}, body({ user_id: legacyUserId }))).toBe(SESSION);
    expect(sessionIdOf({}, body({ user_id: legacyNoAccount }))).toBe(SESSION);
  });

  it('x-maestro-session when the body names no session', () => {
    expect(sessionIdOf({ 'x-maestro-session': 'job-42' }, body({ user_id: 'some-opaque-user' }))).toBe('job-42');
    expect(sessionIdOf({ 'x-maestro-session': ['job-43', 'x'] }, undefined)).toBe('job-43');
    expect(sessionIdOf({ 'x-maestro-session': 'job-44' }, Buffer.from('not json "metadata"'))).toBe('job-44');
    expect(sessionIdOf({ 'x-maestro-session': 'job-45' }, body({ user_id: '{"session_id": 7}' }))).toBe('job-45');
  });

  it('none → undefined', () => {
    expect(sessionIdOf({}, undefined)).toBeUndefined();
    expect(sessionIdOf({ 'x-claude-code-session-id': '  ' }, body(undefined))).toBeUndefined();
    expect(sessionIdOf({}, body({ user_id: 'user_abc' }))).toBeUndefined();
  });

  it('an id longer than 200 characters is no session', () => {
    expect(sessionIdOf({ 'x-claude-code-session-id': 'a'.repeat(201) }, undefined)).toBeUndefined();
    expect(sessionIdOf({ 'x-claude-code-session-id': 'a'.repeat(200) }, undefined)).toBe('a'.repeat(200));
    expect(sessionIdOf({}, body({ user_id: JSON.stringify({ session_id: 'b'.repeat(201) }) }))).toBeUndefined();
  });

  it('a body over 1 MiB is not parsed', () => {
    const big = Buffer.from(JSON.stringify({ metadata: { user_id: jsonUserId }, pad: 'x'.repeat(1024 * 1024) }));
    expect(sessionIdOf({}, big)).toBeUndefined();
  });
});

describe('sessionKeyOf', () => {
  it('is 32 base64url characters, stable, namespaced by key, and never the raw id', () => {
    const a = sessionKeyOf('key_a', SESSION);
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(sessionKeyOf('key_a', SESSION)).toBe(a);
    expect(sessionKeyOf('key_b', SESSION)).not.toBe(a);
    expect(a).not.toContain(SESSION.slice(0, 8));
    // keyId + '\0' + sessionId: no ambiguity between ("ab","c") and ("a","bc").
    expect(sessionKeyOf('ab', 'c')).not.toBe(sessionKeyOf('a', 'bc'));
  });
});
