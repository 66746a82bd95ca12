// Gemini's streamed JSON array (`[{…},\r\n{…}]`, `:streamGenerateContent` without `alt=sse`): split
// into its top-level elements by a string-aware bracket scanner, without parsing; each element is
// handed on like one SSE chunk.
import { backslashesBefore } from '../jsonBytes.js';
import { MAX_LINE_BYTES } from './sink.js';

/** Splits a JSON array arriving in pieces into its top-level object elements, without parsing it. */
export class ArrayScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private collecting = false;
  private tooBig = false;
  private pieces: Buffer[] = [];
  private pending = 0;

  constructor(private readonly onElement: (bytes: Buffer) => void) {}

  write(bytes: Buffer): void {
    let start = this.collecting ? 0 : -1;
    let i = 0;
    const n = bytes.length;
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        // Short strings (keys, small values) by hand; past 32 bytes, let indexOf find the quote.
        const stop = Math.min(n, i + 32);
        while (i < stop) {
          const c = bytes[i]!;
          if (c === 0x22) break;
          i += c === 0x5c ? 2 : 1;
        }
        if (i < stop) {
          this.inString = false;
          i++;
          continue;
        }
        if (i >= n) {
          this.escaped = i > n; // the chunk ended on a backslash
          break;
        }
        const quote = bytes.indexOf(0x22, i);
        if (quote === -1) {
          this.escaped = backslashesBefore(bytes, n, i) % 2 === 1;
          break;
        }
        if (backslashesBefore(bytes, quote, i) % 2 === 0) this.inString = false;
        i = quote + 1;
        continue;
      }
      const c = bytes[i]!;
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) {
        this.depth++;
        if (this.depth === 2 && c === 0x7b) {
          this.collecting = true;
          start = i;
        }
      } else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 1 && this.collecting) {
          this.element(bytes.subarray(start, i + 1));
          start = -1;
        } else if (this.depth <= 0) {
          this.depth = 0;
        }
      }
      i++;
    }
    if (this.collecting && start !== -1) this.hold(bytes.subarray(start));
  }

  private hold(part: Buffer): void {
    if (this.tooBig) return;
    this.pending += part.length;
    if (this.pending > MAX_LINE_BYTES) {
      this.tooBig = true;
      this.pieces = [];
    } else this.pieces.push(part);
  }

  private element(last: Buffer): void {
    const tooBig = this.tooBig || this.pending + last.length > MAX_LINE_BYTES;
    const bytes = tooBig ? undefined : this.pending === 0 ? last : Buffer.concat([...this.pieces, last], this.pending + last.length);
    this.collecting = false;
    this.tooBig = false;
    this.pieces = [];
    this.pending = 0;
    if (bytes) this.onElement(bytes);
  }
}
