// A metered call whose final token counts never arrived (a stream the client or the provider cut
// short) is counted `incomplete`, and a budget is charged its stated upper bound beyond what was
// reported: what the provider may bill for it, so no key slips past its budget by leaving early.
//   output: the request's own maximum (max_tokens, max_output_tokens, max_completion_tokens,
//           generationConfig.maxOutputTokens), else DEFAULT_OUTPUT_BOUND; less what was reported;
//   input:  nothing more when the provider reported it before the cut (Anthropic's message_start,
//           Gemini's every chunk), else the request body's size in bytes (a token of text is at
//           least one byte).
import type { TokenUsage } from './tap.js';

/** Output tokens charged for an incomplete call whose request names no maximum. */
export const DEFAULT_OUTPUT_BOUND = 8_192;

/** The tokens to charge beyond `reported` for an incomplete call; `request` is its body when held (plain JSON), `requestBytes` its size. */
export function incompleteCharge(reported: TokenUsage | undefined, request: Buffer | undefined, requestBytes: number): number {
  const output = Math.max(0, outputBound(request) - (reported?.outputTokens ?? 0));
  const input = reported === undefined ? Math.max(0, requestBytes) : 0;
  return output + input;
}

/** The most output tokens the request allows, as it says; DEFAULT_OUTPUT_BOUND when it does not (or is not read). */
export function outputBound(request: Buffer | undefined): number {
  if (!request) return DEFAULT_OUTPUT_BOUND;
  let body: unknown;
  try {
    body = JSON.parse(request.toString('utf8'));
  } catch {
    return DEFAULT_OUTPUT_BOUND;
  }
  if (body === null || typeof body !== 'object') return DEFAULT_OUTPUT_BOUND;
  const b = body as Record<string, unknown>;
  const config = b.generationConfig ?? (b.request as Record<string, unknown> | undefined)?.generationConfig;
  for (const value of [
    b.max_tokens,
    b.max_output_tokens,
    b.max_completion_tokens,
    (config as Record<string, unknown> | undefined)?.maxOutputTokens,
  ]) {
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.floor(value);
  }
  return DEFAULT_OUTPUT_BOUND;
}
