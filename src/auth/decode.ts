// The one content-encoding decoder Maestro uses: for a whole body (readBody), for a streamed answer
// (the proxy's mapped answers) and for the copy the usage watcher reads. gzip, x-gzip, deflate (zlib
// wrapped, as RFC 9110 says, or raw, as some servers send it: told apart by its first two bytes),
// br, and several codings stacked (`gzip, br`: undone last first).
import { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

/** Content codings Maestro can decode, for an `accept-encoding` header. */
export const SUPPORTED_ENCODINGS = ['gzip', 'deflate', 'br'] as const;

type Whole = (input: Buffer, options: zlib.ZlibOptions | zlib.BrotliOptions) => Promise<Buffer>;

const gunzip = promisify(zlib.gunzip) as Whole;
const inflate = promisify(zlib.inflate) as Whole;
const inflateRaw = promisify(zlib.inflateRaw) as Whole;
const brotli = promisify(zlib.brotliDecompress) as Whole;

interface Coding {
  /** A streaming decoder. */
  stream(): Duplex;
  /** A whole body at once (zlib's one-shot call: no stream machinery). */
  whole: Whole;
}

/** A Map, not an object: a coding named `constructor` is unknown, not Object's. */
const CODINGS: ReadonlyMap<string, Coding> = new Map<string, Coding>([
  ['gzip', { stream: () => zlib.createGunzip(), whole: gunzip }],
  ['x-gzip', { stream: () => zlib.createGunzip(), whole: gunzip }],
  [
    'deflate',
    { stream: () => new InflateEither(), whole: (input, options) => (looksLikeZlib(input) ? inflate : inflateRaw)(input, options) },
  ],
  ['br', { stream: () => zlib.createBrotliDecompress(), whole: brotli }],
]);

/** `gzip, br` → ['gzip', 'br'] (order applied by the sender); identity entries dropped. */
export function parseContentEncoding(header: string | string[] | undefined): string[] {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  return value
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part !== '' && part !== 'identity');
}

/** True when every coding in the header can be decoded. */
export function canDecode(header: string | string[] | undefined): boolean {
  return parseContentEncoding(header).every((coding) => CODINGS.has(coding));
}

/**
 * A streaming decoder for a content-encoding header: the codings undone last first, in one
 * Duplex. Undefined when there is nothing to undo (no header, identity) or a coding is unknown
 * (`canDecode` tells the two apart). It fails (an 'error') on bytes that are not what it says.
 */
export function createDecoder(header: string | string[] | undefined): Duplex | undefined {
  if (header === undefined || header === '') return undefined;
  const codings = parseContentEncoding(header);
  const decoders = codings.map((coding) => CODINGS.get(coding));
  if (decoders.length === 0 || decoders.includes(undefined)) return undefined;
  if (decoders.length === 1) return decoders[0]!.stream();
  return new Stacked(decoders.reverse().map((coding) => coding!.stream()));
}

/**
 * One coding (a name `canDecode` accepts) undone on a whole body. Rejects with zlib's error: a
 * RangeError (or ERR_BUFFER_TOO_LARGE) when the output would pass `maxOutputLength`, another one
 * when the bytes are not valid for the coding.
 */
export function decodeWhole(coding: string, input: Buffer, maxOutputLength: number): Promise<Buffer> {
  const known = CODINGS.get(coding);
  if (!known) return Promise.reject(new Error(`unsupported content-encoding "${coding.slice(0, 40)}"`));
  return known.whole(input, { maxOutputLength });
}

/** True when zlib refused to decode because the output would pass its limit. */
export function isTooLarge(error: unknown): boolean {
  return error instanceof RangeError || (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
}

/** Whether a deflate body starts with a zlib header (CMF/FLG: method 8, window ≤ 32 KiB, check bits). */
function looksLikeZlib(input: Buffer): boolean {
  if (input.length < 2) return false;
  const cmf = input[0]!;
  const flg = input[1]!;
  return (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && ((cmf << 8) | flg) % 31 === 0;
}

/**
 * A Duplex around decoding streams, chosen late (deflate's kind) or stacked: what is written goes
 * to the first, what the last one gives out is read from it. Back-pressure holds both ways (a chunk
 * is acknowledged once the first stage took it; the last stage pauses while this is not read, as a
 * lone zlib stream does, so a small bomb cannot fill memory); any stage's error is its error.
 */
abstract class Relay extends Duplex {
  private stages: Duplex[] = [];

  protected get attached(): boolean {
    return this.stages.length > 0;
  }

  protected attach(stages: Duplex[]): void {
    for (let i = 0; i + 1 < stages.length; i++) stages[i]!.pipe(stages[i + 1]!);
    for (const stage of stages) stage.on('error', (error) => this.destroy(error));
    const last = stages.at(-1)!;
    last.on('data', (out: Buffer) => {
      if (!this.push(out)) last.pause();
    });
    last.on('end', () => this.push(null));
    this.stages = stages;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.feed(chunk, done);
  }

  protected feed(chunk: Buffer, done: () => void): void {
    this.stages[0]!.write(chunk, () => done());
  }

  override _final(done: (error?: Error | null) => void): void {
    this.stages[0]!.end();
    done();
  }

  override _read(): void {
    this.stages.at(-1)?.resume();
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    for (const stage of this.stages) stage.destroy();
    done(error);
  }
}

/** Several codings (`gzip, br`): one decoder per coding, the last applied first. */
class Stacked extends Relay {
  constructor(stages: Duplex[]) {
    super();
    this.attach(stages);
  }
}

/** HTTP deflate of either kind: the inflater is chosen once the first two bytes are in. */
class InflateEither extends Relay {
  /** A first byte on its own, until the second says which kind this is. */
  private head: Buffer | undefined;

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (!this.attached) {
      const bytes = this.head ? Buffer.concat([this.head, chunk]) : chunk;
      if (bytes.length < 2) {
        this.head = bytes;
        return done();
      }
      this.head = undefined;
      this.open(bytes);
      chunk = bytes;
    }
    this.feed(chunk, done);
  }

  override _final(done: (error?: Error | null) => void): void {
    // Nothing or a lone byte came: zlib says what it says of that (an unexpected end), as gzip and br do.
    if (!this.attached) {
      const head = this.head ?? Buffer.alloc(0);
      this.open(head);
      if (head.length > 0) this.feed(head, () => undefined);
    }
    super._final(done);
  }

  private open(first: Buffer): void {
    this.attach([looksLikeZlib(first) ? zlib.createInflate() : zlib.createInflateRaw()]);
  }
}
