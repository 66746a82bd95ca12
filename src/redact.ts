// One home for keeping secrets out of text. Two uses, one set of rules:
//   redactSecrets(line)  provider token shapes and secret-bearing fields, over a serialized log line;
//   safeText(text, …)    text Maestro stores or returns (error messages, last_error, event reasons):
//                        known secret values, the shapes above, JWTs and long opaque runs removed,
//                        control characters flattened, length capped.
import { UUID } from './ids.js';

// Shapes of provider secrets and of secret-bearing fields, matched in the serialized line.
const SECRET_PATTERNS: [RegExp, string][] = [
  [/\b(sk-ant-[a-z]{2,8}\d*-)[A-Za-z0-9_-]{8,}/g, '$1[REDACTED]'],
  [/\bsk-(proj-)?[A-Za-z0-9_-]{16,}/g, 'sk-[REDACTED]'],
  [/\bAIza[0-9A-Za-z_-]{20,}/g, 'AIza[REDACTED]'],
  [/\bya29\.[0-9A-Za-z._-]+/g, 'ya29.[REDACTED]'],
  [/\bmsk_[A-Za-z0-9_-]{8,}/g, 'msk_[REDACTED]'],
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1[REDACTED]'],
  [
    /("(?:access_?token|refresh_?token|id_?token|api_?key|code_?verifier|code|client_secret|authorization|x-api-key)"\s*:\s*")[^"]*(")/gi,
    '$1[REDACTED]$2',
  ],
  [/((?:access_token|refresh_token|code|code_verifier|client_secret)=)[^&\s"]+/gi, '$1[REDACTED]'],
];

export function redactSecrets(line: string): string {
  let out = line;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

const JWT = /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*)?/g;
const LONG_RUN = /[A-Za-z0-9._~+/=-]{24,}/g;

/** Mixed letters and digits, or mixed case: a random string rather than a word like refresh_token_invalidated. */
function looksOpaque(run: string): boolean {
  const letters = /[A-Za-z]/.test(run);
  return (letters && /\d/.test(run)) || (/[a-z]/.test(run) && /[A-Z]/.test(run));
}

export function safeText(text: string, opts: { knownSecrets?: readonly (string | undefined)[]; max: number }): string {
  let out = text;
  // Very short values would redact ordinary words; real secrets are longer.
  for (const secret of opts.knownSecrets ?? []) if (secret && secret.length >= 4) out = out.split(secret).join('[REDACTED]');
  out = redactSecrets(out)
    .replace(JWT, '[REDACTED]')
    // Long opaque runs look like tokens, codes or verifiers whatever the provider meant; ids stay.
    .replace(LONG_RUN, (run) => (!UUID.test(run) && looksOpaque(run) ? '[REDACTED]' : run))
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .trim();
  return out.length > opts.max ? `${out.slice(0, opts.max - 1)}…` : out;
}
