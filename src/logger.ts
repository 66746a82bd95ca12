// pino logger with secrets redacted twice: by known paths, and by pattern over the written line,
// so a token that slips into a message or an unexpected field still never reaches a log.
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import { redactSecrets } from './redact.js';

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
