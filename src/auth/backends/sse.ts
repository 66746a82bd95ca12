// Server-sent events in and out, for the sign-in backends whose answers are mapped event by event.
import { Transform } from 'node:stream';

export interface SseEvent {
  event?: string;
  /** The data lines joined with \n (an event without data lines is skipped). */
  data: string;
}

/** Splits SSE bytes into events; feed chunks with push(), then end() for a last event without a blank line. */
export class SseParser {
  private buffer = '';
  private readonly decoder = new TextDecoder('utf-8');

  push(chunk: Buffer): SseEvent[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    return this.drain(false);
  }

  end(): SseEvent[] {
    this.buffer += this.decoder.decode();
    return this.drain(true);
  }

  private drain(final: boolean): SseEvent[] {
    const out: SseEvent[] = [];
    // A CR at the very end may be the first half of a CRLF split between chunks: held back until the next one.
    const held = !final && this.buffer.endsWith('\r') ? '\r' : '';
    const blocks = (held ? this.buffer.slice(0, -1) : this.buffer).replace(/\r\n?/g, '\n').split('\n\n');
    this.buffer = final ? '' : blocks.pop()! + held;
    for (const block of blocks) {
      let event: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':') || line === '') continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) out.push({ event, data: data.join('\n') });
    }
    return out;
  }
}

/** One SSE event as bytes. */
export function sseEvent(data: string, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}${data
    .split('\n')
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}

/** A Transform that maps each upstream SSE event to output text (possibly nothing), plus a tail at the end. */
export function mapSse(map: (event: SseEvent) => string, tail: () => string = () => ''): Transform {
  const parser = new SseParser();
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      try {
        const out = parser.push(chunk).map(map).join('');
        done(null, out === '' ? undefined : out);
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done) {
      try {
        const out = parser.end().map(map).join('') + tail();
        done(null, out === '' ? undefined : out);
      } catch (error) {
        done(error as Error);
      }
    },
  });
}

/** What a whole answer becomes: the body, and another status than the backend's when the mapping found a failure. */
export type WholeAnswer = string | { status: number; body: string };

/**
 * A Transform that holds the whole answer and emits `build(all bytes)` at the end (answers a
 * client wants as one JSON). A status `build` decides is told to `setStatus` before any byte leaves.
 */
export function collect(build: (body: Buffer) => WholeAnswer, setStatus?: (status: number) => void): Transform {
  const chunks: Buffer[] = [];
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
    flush(done) {
      try {
        const answer = build(Buffer.concat(chunks));
        if (typeof answer === 'string') return done(null, answer);
        setStatus?.(answer.status);
        done(null, answer.body);
      } catch (error) {
        done(error as Error);
      }
    },
  });
}

/** Runs a whole answer through a mapping Transform (durable calls read answers whole). */
export async function mapWhole(body: Buffer, transform: Transform): Promise<Buffer> {
  const out: Buffer[] = [];
  transform.on('data', (chunk: Buffer | string) => out.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
  const finished = new Promise<void>((resolve, reject) => {
    transform.once('end', resolve);
    transform.once('error', reject);
  });
  transform.end(body);
  await finished;
  return Buffer.concat(out);
}
