// JSON answers: a body is kept (at most MAX_OBSERVED_JSON_BYTES, decompressed) and parsed once at
// its end; of a bigger one only its head and tail are kept and read. An answer that turns out to be
// a streamed array goes to the array scanner, and one without a content type that looks like SSE
// to the SSE framing.
import type { Interpreter } from '../dialects/interpreter.js';
import {
  closingEnd,
  findLastKey,
  isSpace,
  KEY_FINISH_REASON,
  KEY_MODEL,
  KEY_MODEL_VERSION,
  KEY_USAGE,
  KEY_USAGE_METADATA,
  parse,
  stringAt,
  valueAt,
} from '../jsonBytes.js';
import { ArrayScanner } from './jsonArray.js';
import { MAX_OBSERVED_JSON_BYTES, type Sink } from './sink.js';
import { SseSink } from './sse.js';

/** Of a JSON body over MAX_OBSERVED_JSON_BYTES: the bytes kept from its start (the model) and its end (the usage). */
const BIG_BODY_HEAD_BYTES = 64 * 1024;
const BIG_BODY_TAIL_BYTES = 256 * 1024;

export class JsonSink implements Sink {
  private mode: 'sniff' | 'body' | 'big' | 'array' | 'sse' | 'off' = 'sniff';
  private pieces: Buffer[] = [];
  private size = 0;
  /** A body over MAX_OBSERVED_JSON_BYTES: its first bytes (where the model is) and its last pieces (where the usage is). */
  private head: Buffer | undefined;
  private tail: BoundedTail | undefined;
  private array: ArrayScanner | undefined;
  private sse: SseSink | undefined;

  /** `sniffSse`: no content type was given, so an SSE stream is recognised by its first byte too. */
  constructor(
    private readonly interpret: Interpreter,
    private readonly sniffSse: boolean,
  ) {}

  write(bytes: Buffer): void {
    if (this.mode === 'sniff') {
      let i = 0;
      while (i < bytes.length && isSpace(bytes[i]!)) i++;
      if (i === bytes.length) return;
      const first = bytes[i]!;
      if (first === 0x7b /* { */) this.mode = 'body';
      else if (first === 0x5b /* [ */) {
        this.mode = 'array';
        this.array = new ArrayScanner((element) => this.interpret.streamedObject(element));
      } else if (this.sniffSse && (first === 0x3a || first === 0x64 || first === 0x65) /* ':' comment, 'd'ata:, 'e'vent: */) {
        this.mode = 'sse';
        this.sse = new SseSink(this.interpret);
      } else this.mode = 'off';
    }
    if (this.mode === 'body') {
      this.size += bytes.length;
      this.pieces.push(bytes);
      if (this.size > MAX_OBSERVED_JSON_BYTES) this.goBig();
    } else if (this.mode === 'big') this.tail!.push(bytes);
    else if (this.mode === 'array') this.array!.write(bytes);
    else if (this.mode === 'sse') this.sse!.write(bytes);
  }

  /** Too big to keep whole (many embeddings, say): keep its head and a bounded tail, and read the usage from those. */
  private goBig(): void {
    const whole = Buffer.concat(this.pieces, this.size);
    this.head = Buffer.from(whole.subarray(0, BIG_BODY_HEAD_BYTES));
    this.tail = new BoundedTail(BIG_BODY_TAIL_BYTES);
    this.tail.push(whole.subarray(whole.length - BIG_BODY_TAIL_BYTES));
    this.pieces = [];
    this.mode = 'big';
  }

  end(done: () => void): void {
    try {
      if (this.mode === 'body') this.interpret.body(parse(Buffer.concat(this.pieces, this.size)));
      else if (this.mode === 'big') this.interpret.body(headAndTail(this.head!, this.tail!.take()));
      else if (this.mode === 'sse') return this.sse!.end(done);
    } catch {
      // a parse problem stays here
    }
    this.abandon();
    done();
  }

  abandon(): void {
    this.mode = 'off';
    this.pieces = [];
    this.head = undefined;
    this.tail = undefined;
    this.array = undefined;
    this.sse?.abandon();
  }

  get active(): boolean {
    return this.mode !== 'off';
  }
}

/** The last `limit` bytes (at least) of a stream, as the pieces they came in. */
class BoundedTail {
  private pieces: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  push(bytes: Buffer): void {
    this.pieces.push(bytes);
    this.size += bytes.length;
    while (this.pieces.length > 1 && this.size - this.pieces[0]!.length >= this.limit) this.size -= this.pieces.shift()!.length;
  }

  take(): Buffer {
    const out = Buffer.concat(this.pieces, this.size);
    this.pieces = [];
    this.size = 0;
    return out;
  }
}

/**
 * What a body too big to parse says about its usage, as an object the interpreters read like a
 * whole body: every provider puts its usage last (Anthropic's and OpenAI's `usage`, Gemini's
 * `usageMetadata` and `modelVersion`), and Anthropic its model first. The last structural key of
 * that name in the tail is the body's own (inside a JSON string a quote is always escaped).
 */
function headAndTail(head: Buffer, tail: Buffer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const objectAt = (bytes: Buffer, key: Buffer): unknown => {
    const at = findLastKey(bytes, key);
    if (at === -1) return undefined;
    const start = valueAt(bytes, at + key.length);
    const end = bytes[start] === 0x7b ? closingEnd(bytes, start) : -1;
    return end === -1 ? undefined : parse(bytes.subarray(start, end));
  };
  const stringOf = (key: Buffer): string | undefined => {
    for (const bytes of [tail, head]) {
      const at = findLastKey(bytes, key);
      const value = at === -1 ? undefined : stringAt(bytes, valueAt(bytes, at + key.length));
      if (value !== undefined) return value;
    }
    return undefined;
  };
  out.usage = objectAt(tail, KEY_USAGE);
  out.usageMetadata = objectAt(tail, KEY_USAGE_METADATA);
  out.model = stringOf(KEY_MODEL);
  out.modelVersion = stringOf(KEY_MODEL_VERSION);
  if (findLastKey(tail, KEY_FINISH_REASON) !== -1) out.candidates = [{ finishReason: 'tail' }];
  return out;
}
