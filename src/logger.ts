// pino logger with secrets redacted twice: by known paths, and by pattern over the written line,
// so a token that slips into a message or an unexpected field still never reaches a log.
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;

const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.accessToken',
  '*.refreshToken',
  '*.apiKey',
  '*.idToken',
  '*.code',
  '*.codeVerifier',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.code_verifier',
];

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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'maestro' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: { streamWrite: redactSecrets },
    },
    destination,
  );
}
