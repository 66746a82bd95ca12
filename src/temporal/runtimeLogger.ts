// The Temporal SDK's own log lines (the Rust core and the worker), written through Maestro's
// logger: the same format, the same redaction. Warnings and errors only, less one the SDK prints
// by design for Maestro's activity-only refresh queue.
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import type { Logger } from '../logger.js';

/** "No workflows registered" on `<queue>-refresh`: that worker runs activities only, on purpose. */
const EXPECTED = /^No workflows registered/;

export function temporalRuntimeLogger(log: Logger): DefaultLogger {
  return new DefaultLogger('WARN', ({ level, message, meta }: LogEntry) => {
    if (EXPECTED.test(message)) return;
    const fields = { temporal: true, ...(meta as Record<string, unknown> | undefined) };
    if (level === 'ERROR') log.error(fields, message);
    else log.warn(fields, message);
  });
}
