import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { toFailure } from '../src/activities/failures.js';
import {
  BodyTooLargeError,
  ConfigError,
  ConflictError,
  errorForFailure,
  errorRule,
  HttpError,
  LimitExceededError,
  MalformedTokenResponseError,
  NoRefreshWorkflowError,
  NotFoundError,
  parseRetryAfter,
  ProviderUnavailableError,
  ReauthRequiredError,
  ServiceUnavailableError,
  ValidationError,
  VersionConflictError,
} from '../src/errors.js';
import { FailureType } from '../src/model/failures.js';

describe('the error table', () => {
  it('gives a subclass its nearest parent’s row, and anything unknown the internal one', () => {
    expect(errorRule(new BodyTooLargeError(10))).toBe(errorRule(new ValidationError('x')));
    expect(errorRule(new NoRefreshWorkflowError('x')).status).toBe(404);
    expect(errorRule(new VersionConflictError('id', 1)).status).toBe(409);
    expect(errorRule(new ReauthRequiredError('x'))).toMatchObject({ status: 409, failure: FailureType.reauthRequired, retryable: false });
    for (const other of [new Error('x'), new ConfigError('x'), 'text', null, undefined]) {
      expect(errorRule(other)).toMatchObject({ status: 500, failure: FailureType.transient, retryable: true });
    }
  });

  it('an HttpError keeps its own status', () => {
    expect(errorRule(new HttpError(413, 'payload_too_large', 'x')).status).toBe(413);
  });

  it('a token answer that cannot be used is not retried at once; an unreachable provider is, after its Retry-After', () => {
    expect(errorRule(new MalformedTokenResponseError('x'))).toMatchObject({ failure: FailureType.malformed, retryable: false });
    const failure = toFailure(new ProviderUnavailableError('busy', 1.5));
    expect(failure).toMatchObject({ type: FailureType.providerUnavailable, nonRetryable: false, nextRetryDelay: 1_500 });
    // Maestro's own Retry-After is the HTTP caller's, not Temporal's.
    expect(toFailure(new ServiceUnavailableError('down')).nextRetryDelay).toBeUndefined();
    expect(toFailure(new LimitExceededError('rate_limited', 'slow', 3)).nextRetryDelay).toBeUndefined();
  });

  it('maps a workflow failure type to the class the API answers with', () => {
    expect(errorForFailure(FailureType.misconfigured)).toBe(ConflictError);
    expect(errorForFailure(FailureType.stopped)).toBe(NotFoundError);
    expect(errorForFailure('SomethingElse')).toBe(ServiceUnavailableError);
    expect(errorForFailure('toString')).toBe(ServiceUnavailableError);
  });

  it('toFailure passes an ApplicationFailure through', () => {
    const given = ApplicationFailure.nonRetryable('x', FailureType.disabled);
    expect(toFailure(given)).toBe(given);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, ignores garbage, never goes negative', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter('1.5', now)).toBe(1.5);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:01:00 GMT', now)).toBe(60);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter(['7'], now)).toBe(7);
  });
});
