// OpenAI chat completions report a stream's token usage only when the request asks for it
// (`stream_options.include_usage`), and most streaming SDKs do not ask. Maestro asks on the
// client's behalf, so that every stream is counted from the provider's own numbers, and takes out
// of the answer what the client did not ask for: the `"usage":null` member every chunk then
// carries, and the final chunk that holds only the usage (`"choices":[]`), which a client that did
// not ask for it may not expect.
import { Transform } from 'node:stream';
import { setTopLevelMember } from '../auth/jsonMembers.js';

/**
 * The request body asking for the stream's usage, or undefined when there is nothing to do (not a
 * JSON object, not a stream, or the client asked already). Other `stream_options` members stay.
 */
export function askStreamUsage(body: Buffer): Buffer | undefined {
  let request: unknown;
  try {
    request = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) return undefined;
  const { stream, stream_options: options } = request as { stream?: unknown; stream_options?: unknown };
  if (stream !== true) return undefined;
  const given = options !== null && typeof options === 'object' && !Array.isArray(options) ? (options as Record<string, unknown>) : {};
  if (given.include_usage === true) return undefined;
  return setTopLevelMember(body, 'stream_options', JSON.stringify({ ...given, include_usage: true }));
}

const USAGE_NULL = Buffer.from(',"usage":null}');
const NO_CHOICES = Buffer.from('"choices":[]');
const USAGE_OBJECT = Buffer.from('"usage":{');
const DATA = Buffer.from('data:');

/**
 * Takes out of a chat completion stream (SSE) what `askStreamUsage` made the provider add. Events
 * are handled whole (split at their blank line); any other byte passes as it came.
 */
export function stripStreamUsage(): Transform {
  let held = Buffer.alloc(0);
  const eventEnd = (bytes: Buffer): [number, number] | undefined => {
    const lf = bytes.indexOf('\n\n');
    const crlf = bytes.indexOf('\r\n\r\n');
    if (lf === -1 && crlf === -1) return undefined;
    if (crlf !== -1 && (lf === -1 || crlf < lf)) return [crlf, 4];
    return [lf, 2];
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      let bytes = held.length ? Buffer.concat([held, chunk]) : chunk;
      const out: Buffer[] = [];
      for (let end = eventEnd(bytes); end; end = eventEnd(bytes)) {
        const [at, separator] = end;
        const kept = strippedEvent(bytes.subarray(0, at));
        if (kept) out.push(kept, bytes.subarray(at, at + separator));
        bytes = bytes.subarray(at + separator);
      }
      held = Buffer.from(bytes); // a copy: the chunk's buffer may be reused
      done(null, out.length ? Buffer.concat(out) : undefined);
    },
    flush(done) {
      done(null, held.length ? held : undefined);
    },
  });
}

/** One event (without its blank line): undefined to drop it, else the event with `,"usage":null` taken out. */
function strippedEvent(event: Buffer): Buffer | undefined {
  if (!event.subarray(0, DATA.length).equals(DATA)) return event;
  // The usage chunk: no choices, a usage object (the chunk's own members are structural: inside a
  // JSON string a quote is always escaped, so these byte sequences cannot come from content).
  if (event.includes(NO_CHOICES) && event.includes(USAGE_OBJECT)) return undefined;
  const last = event.lastIndexOf(USAGE_NULL);
  if (last !== -1 && last + USAGE_NULL.length === trimmedEnd(event)) {
    return Buffer.concat([event.subarray(0, last), event.subarray(last + USAGE_NULL.length - 1)]);
  }
  return event;
}

function trimmedEnd(bytes: Buffer): number {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0x0d)) end--;
  return end;
}
