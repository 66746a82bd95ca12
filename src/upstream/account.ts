// What one provider call adds to its key's usage, from what its answer said: the provider's own
// counts, an error for a status ≥ 400 or an error event in a 200 stream, and for a metered answer
// that ended without its final counts, `incomplete` with the upper bound its budget is charged
// (src/usage/incomplete.ts). The proxy's recorder and the worker's durable record take the same.
import type { InferencePath } from '../providers/types.js';
import { incompleteCharge } from '../usage/incomplete.js';
import type { CallRecord } from '../usage/recorder.js';
import type { CallObservation } from '../usage/tap.js';

export type CallUsage = Pick<CallRecord, 'model' | 'usage' | 'error' | 'incomplete' | 'incompleteCharge'>;

export function callUsage(
  seen: CallObservation,
  status: number,
  reporting: InferencePath['usage'],
  request: { plain: Buffer | undefined; bytes: number },
): CallUsage {
  const incomplete = reporting !== undefined && status >= 200 && status < 300 && !seen.complete;
  return {
    // An error answer names no model: the request's, read only then (the hot path parses nothing).
    model: seen.model ?? (status >= 400 || incomplete ? requestedModel(request.plain) : undefined),
    usage: seen.usage,
    error: status >= 400 || seen.streamError !== undefined,
    incomplete,
    incompleteCharge: incomplete ? incompleteCharge(seen.usage, request.plain, request.bytes) : undefined,
  };
}

function requestedModel(body: Buffer | undefined): string | undefined {
  if (!body || body.length > 64 * 1024) return undefined;
  try {
    const model = (JSON.parse(body.toString('utf8')) as { model?: unknown }).model;
    return typeof model === 'string' ? model : undefined;
  } catch {
    return undefined;
  }
}
