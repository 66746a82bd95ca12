// Reading HTTP bodies that may be compressed. Whoever reads a body decodes it here; whoever
// passes a body on untouched must keep its content-encoding label (see the proxy).
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { BodyTooLargeError, ContentDecodingError } from '../errors.js';

/** Default ceiling for a read body, raw and decoded: 32 MiB. */
export const DEFAULT_BODY_LIMIT_BYTES = 32 * 1024 * 1024;

type Decoder = (input: Buffer, options: zlib.ZlibOptions | zlib.BrotliOptions) => Promise<Buffer>;

const gunzip = promisify(zlib.gunzip) as Decoder;
const inflate = promisify(zlib.inflate) as Decoder;
const inflateRaw = promisify(zlib.inflateRaw) as Decoder;
const brotli = promisify(zlib.brotliDecompress) as Decoder;

/** `deflate` is meant to be zlib-wrapped (RFC 9110), but some servers send raw deflate: accept both. */
const inflateEither: Decoder = (input, options) => (looksLikeZlib(input) ? inflate : inflateRaw)(input, options);

const DECODERS: Record<string, Decoder> = {
  gzip: gunzip,
  'x-gzip': gunzip,
  deflate: inflateEither,
  br: brotli,
};

/** Content codings Maestro can decode, for an `accept-encoding` header. */
export const SUPPORTED_ENCODINGS = ['gzip', 'deflate', 'br'] as const;

/** `gzip, br` → ['gzip', 'br'] (order applied by the sender); identity entries dropped. */
export function parseContentEncoding(header: string | string[] | undefined): string[] {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  return value
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part !== '' && part !== 'identity');
}

/** True when every coding in the header can be decoded by readBody. */
export function canDecode(header: string | string[] | undefined): boolean {
  return parseContentEncoding(header).every((coding) => coding in DECODERS);
}

/**
 * Reads a whole body and decodes its content-encoding (gzip, x-gzip, deflate, br, stacked
 * codings too). `limitBytes` bounds both the bytes read and the decoded size (a small
 * compressed body cannot expand past it). Throws BodyTooLargeError or ContentDecodingError.
 */
export async function readBody(
  body: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  contentEncoding: string | string[] | undefined,
  limitBytes: number = DEFAULT_BODY_LIMIT_BYTES,
): Promise<Buffer> {
  const codings = parseContentEncoding(contentEncoding);
  const unknown = codings.find((coding) => !(coding in DECODERS));
  if (unknown !== undefined) {
    destroy(body);
    throw new ContentDecodingError(`unsupported content-encoding "${unknown.slice(0, 40)}"`);
  }

  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    total += buf.length;
    if (total > limitBytes) {
      destroy(body);
      throw new BodyTooLargeError(limitBytes);
    }
    chunks.push(buf);
  }
  let data: Buffer = Buffer.concat(chunks, total);

  // Codings are listed in the order they were applied: undo them last first.
  for (const coding of [...codings].reverse()) {
    if (data.length === 0) break;
    try {
      data = await DECODERS[coding]!(data, { maxOutputLength: limitBytes });
    } catch (err) {
      if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new BodyTooLargeError(limitBytes);
      }
      throw new ContentDecodingError(`body is not valid ${coding} data`, { cause: err });
    }
  }
  return data;
}

function looksLikeZlib(input: Buffer): boolean {
  if (input.length < 2) return false;
  const cmf = input[0]!;
  const flg = input[1]!;
  return (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && ((cmf << 8) | flg) % 31 === 0;
}

function destroy(body: unknown): void {
  const maybe = body as { destroy?: (error?: Error) => void };
  if (typeof maybe.destroy === 'function') maybe.destroy();
}
