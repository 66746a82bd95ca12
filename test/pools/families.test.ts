// Model families from model names and from the window names the rate-limit headers carry: the
// two must meet, or a family bench would never match the requests it concerns.
import { describe, expect, it } from 'vitest';
import { familyOfWindow, modelFamily } from '../../src/model/families.js';
import { unifiedWindowName } from '../../src/usage/rateLimits.js';

describe('modelFamily', () => {
  it.each([
    ['claude-opus-4-1-20250805', 'opus'],
    ['claude-opus-4-5', 'opus'],
    ['claude-3-opus-20240229', 'opus'],
    ['claude-sonnet-4-5-20250929', 'sonnet'],
    ['claude-3-7-sonnet-latest', 'sonnet'],
    ['claude-3-5-haiku-20241022', 'haiku'],
    ['claude-haiku-4-5', 'haiku'],
    ['claude-fable-5-1', 'fable'],
    ['Claude-Opus-4-1', 'opus'],
    ['gemini-2.5-pro', 'pro'],
    ['gemini-2.5-flash', 'flash'],
    ['gemini-2.0-flash-lite-001', 'flash_lite'],
    ['models/gemini-2.5-pro-preview-06-05', 'pro'],
  ])('%s → %s', (model, family) => {
    expect(modelFamily(model)).toBe(family);
  });

  it.each([['gpt-5-codex'], ['gpt-4o'], ['o3'], [''], ['claude-'], ['claude-3-5']])('%s has no family', (model) => {
    expect(modelFamily(model)).toBeUndefined();
  });

  it('undefined → undefined', () => {
    expect(modelFamily(undefined)).toBeUndefined();
  });
});

describe('familyOfWindow', () => {
  it.each([
    ['five_hour', undefined],
    ['seven_day', undefined],
    ['30_day', undefined],
    ['primary', undefined],
    ['secondary', undefined],
    ['requests', undefined],
    ['input_tokens', undefined],
    ['priority_input_tokens', undefined],
    ['overage', undefined],
    ['seven_day_opus', 'opus'],
    ['seven_day_sonnet', 'sonnet'],
    ['seven_day_oi', 'oi'],
    ['seven_day_overage_included', 'overage_included'],
    ['codex_spark_primary', 'codex_spark'],
    ['weekly_fable', 'weekly_fable'],
  ])('%s → %s', (window, family) => {
    expect(familyOfWindow(window)).toBe(family);
  });

  it('meets the header spelling: 7d_opus from the unified headers is the opus family', () => {
    expect(familyOfWindow(unifiedWindowName('7d_opus'))).toBe(modelFamily('claude-opus-4-1-20250805'));
    expect(familyOfWindow(unifiedWindowName('5h'))).toBeUndefined();
    expect(familyOfWindow(unifiedWindowName('7d'))).toBeUndefined();
  });
});
