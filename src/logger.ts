// pino logger with secrets redacted twice: by known paths, and by pattern over the written line,
// so a token that slips into a message or an unexpected field still never reaches a log.
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import { redactSecrets } from './redact.js';

export type Logger = PinoLogger;

/** Credentials a logged request or response object could carry in its headers. */
export const REQUEST_HEADER_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

const REDACT_PATHS = [
  ...REQUEST_HEADER_PATHS,
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

/**
 * Where a CLI process logs: readable lines when a person watches a terminal in development
 * (pino-pretty, a development dependency), JSON lines otherwise (production, pipes, files).
 * Secrets are redacted before either sees the line.
 * JSON lines are written asynchronously (pino's default) unless `sync`: a process that logs a few
 * lines and also prints to stdout itself (the API supervisor) wants them in the order it made them.
 */
export async function terminalDestination(mode: string, opts: { sync?: boolean } = {}): Promise<DestinationStream | undefined> {
  const json = () => (opts.sync ? pino.destination({ dest: 1, sync: true }) : undefined);
  if (mode === 'production' || !process.stdout.isTTY) return json();
  try {
    const { default: pretty } = await import('pino-pretty');
    return pretty({ colorize: true, ignore: 'pid,hostname,service', translateTime: 'SYS:HH:MM:ss.l', sync: true });
  } catch {
    return json(); // not installed (npm ci --omit=dev): JSON it is
  }
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      // pid: several API processes (MAESTRO_API_PROCESSES) write to one output.
      base: { service: 'maestro', pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: { streamWrite: redactSecrets },
    },
    destination,
  );
}
