// SSE framing on bytes: lines are found with Buffer.indexOf, and an event the usage does not depend
// on (Anthropic's content_block_delta, ping, OpenAI's response.output_text.delta…) is recognised
// from its `event:` line (the dialect says which names matter) and its data is never decoded nor
// parsed. An unfinished line is held as views of the chunks it spans, not copied, until it ends.
import type { Interpreter } from '../dialects/interpreter.js';
import { MAX_LINE_BYTES, type Sink } from './sink.js';

const DATA = [0x64, 0x61, 0x74, 0x61, 0x3a]; // data:
const EVENT = [0x65, 0x76, 0x65, 0x6e, 0x74, 0x3a]; // event:

/** Whether the line `bytes[start, end)` starts with the field name `field` (bytes, colon included). */
function isField(bytes: Buffer, start: number, end: number, field: readonly number[]): boolean {
  if (end - start < field.length) return false;
  for (let i = 0; i < field.length; i++) if (bytes[start + i] !== field[i]) return false;
  return true;
}

function sameAscii(bytes: Buffer, start: number, end: number, text: string): boolean {
  if (end - start !== text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** `bytes[start, end)` as a trimmed ASCII string (an event name), or undefined when empty or too long. */
function asciiTrimmed(bytes: Buffer, start: number, end: number): string | undefined {
  while (start < end && (bytes[start] === 0x20 || bytes[start] === 0x09)) start++;
  while (end > start && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)) end--;
  if (start === end || end - start > 128) return undefined;
  let out = '';
  for (let i = start; i < end; i++) out += String.fromCharCode(bytes[i]!);
  return out;
}

export class SseSink implements Sink {
  private eventName: string | undefined;
  /** Whether the current event's data can matter (computed once per event name). */
  private eventRelevant = true;
  /** The last event name seen and its relevance: events repeat, so the name is not rebuilt for each. */
  private lastName: string | undefined;
  private lastRelevant = true;
  /** An unfinished line: its pieces (views of earlier chunks) and their total length. */
  private pieces: Buffer[] = [];
  private pending = 0;
  /** The unfinished line is being skipped (irrelevant, or too long). */
  private skipping = false;
  private prefixChecked = false;
  private done = false;

  constructor(private readonly interpret: Interpreter) {}

  write(bytes: Buffer): void {
    if (this.done) return;
    let pos = 0;
    const n = bytes.length;
    while (pos < n) {
      const nl = bytes.indexOf(0x0a, pos);
      if (nl === -1) return this.hold(bytes, pos);
      if (this.skipping || this.pending + nl - pos > MAX_LINE_BYTES) this.reset();
      else if (this.pending === 0) this.line(bytes, pos, nl);
      else {
        this.pieces.push(bytes.subarray(pos, nl));
        const line = Buffer.concat(this.pieces, this.pending + nl - pos);
        this.reset();
        this.line(line, 0, line.length);
      }
      pos = nl + 1;
    }
  }

  private hold(bytes: Buffer, from: number): void {
    if (this.skipping) return;
    this.pending += bytes.length - from;
    if (this.pending > MAX_LINE_BYTES) {
      this.pieces = [];
      this.skipping = true;
      return;
    }
    const tail = from === 0 ? bytes : bytes.subarray(from);
    this.pieces.push(tail);
    // A data line of an event that cannot matter is dropped as soon as its start is known.
    if (!this.prefixChecked && this.pending >= 5 && this.eventName !== undefined) {
      this.prefixChecked = true;
      const start = this.pieces.length === 1 ? tail : Buffer.concat(this.pieces, this.pending);
      if (!this.eventRelevant && isField(start, 0, start.length, DATA)) {
        this.pieces = [];
        this.skipping = true;
      }
    }
  }

  private reset(): void {
    if (this.pending !== 0) this.pieces = [];
    this.pending = 0;
    this.skipping = false;
    this.prefixChecked = false;
  }

  /** One line, `bytes[start, end)` without its \n. */
  private line(bytes: Buffer, start: number, end: number): void {
    if (end > start && bytes[end - 1] === 0x0d) end--;
    if (end === start) {
      this.eventName = undefined; // end of an event
      this.eventRelevant = true;
    } else if (isField(bytes, start, end, DATA)) {
      if (!this.eventRelevant) return;
      let from = start + DATA.length;
      if (bytes[from] === 0x20) from++;
      this.interpret.sseData(this.eventName, bytes.subarray(from, end));
    } else if (isField(bytes, start, end, EVENT)) {
      this.event(bytes, start + EVENT.length, end);
    }
    // comments (`: ping`), id:, retry:: nothing to see
  }

  private event(bytes: Buffer, start: number, end: number): void {
    while (start < end && bytes[start] === 0x20) start++;
    if (this.lastName === undefined || !sameAscii(bytes, start, end, this.lastName)) {
      this.lastName = asciiTrimmed(bytes, start, end);
      this.lastRelevant = this.lastName === undefined || this.interpret.relevant(this.lastName);
    }
    this.eventName = this.lastName;
    this.eventRelevant = this.lastRelevant;
  }

  end(done: () => void): void {
    if (!this.done && !this.skipping && this.pending > 0) {
      const line = Buffer.concat(this.pieces, this.pending);
      this.reset();
      try {
        this.line(line, 0, line.length);
      } catch {
        // a parse problem stays here
      }
    }
    this.abandon();
    done();
  }

  abandon(): void {
    this.done = true;
    this.reset();
  }

  get active(): boolean {
    return !this.done;
  }
}
