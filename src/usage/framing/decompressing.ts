// A compressed answer, for the watching only: a copy of each chunk goes through the one decoder
// (src/auth/decode.ts) and what comes out goes to the framing; the bytes passed on to the client
// stay compressed. zlib works asynchronously, so the end of the answer waits for the decoder to
// catch up (chunks themselves are never held back).
import type { Duplex } from 'node:stream';
import { createDecoder } from '../../auth/decode.js';
import type { Sink } from './sink.js';

export class Decompressing implements Sink {
  private decoder: Duplex | undefined;
  private failed = false;
  private ended = false;
  private waiting: (() => void) | undefined;

  /** `encoding`: the codings, as applied (ones createDecoder knows). */
  constructor(
    private readonly encoding: string[],
    private readonly inner: Sink,
  ) {}

  write(bytes: Buffer): void {
    if (this.failed) return;
    // Made on the first byte: an empty answer costs no decoder.
    this.decoder ??= this.open();
    this.decoder.write(bytes);
  }

  private open(): Duplex {
    const decoder = createDecoder(this.encoding)!;
    decoder.on('data', (out: Buffer) => {
      if (this.failed) return;
      try {
        this.inner.write(out);
        if (!this.inner.active) this.fail(); // e.g. a JSON body over the limit: no use decompressing the rest
      } catch {
        this.fail();
      }
    });
    decoder.on('error', () => this.fail());
    decoder.on('end', () => this.finish());
    decoder.on('close', () => this.finish());
    return decoder;
  }

  private fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.inner.abandon();
    this.decoder?.destroy();
    this.release();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.failed) return this.release();
    this.inner.end(() => this.release());
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  end(done: () => void): void {
    if (this.failed || !this.decoder) {
      // Nothing came: there is nothing to decompress.
      this.abandon();
      done();
      return;
    }
    this.waiting = done;
    if (this.ended) return this.release();
    this.decoder.end();
  }

  abandon(): void {
    this.failed = true;
    this.inner.abandon();
    this.decoder?.destroy();
    this.waiting = undefined;
  }

  get active(): boolean {
    return !this.failed;
  }
}
