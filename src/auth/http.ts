// Reading HTTP bodies that may be compressed. Whoever reads a body decodes it here (with the one
// decoder, ./decode.ts); whoever passes a body on untouched must keep its content-encoding label
// (see the proxy).
import { BodyTooLargeError, ContentDecodingError } from '../errors.js';
import { canDecode, decodeWhole, isTooLarge, parseContentEncoding } from './decode.js';

/** Default ceiling for a read body, raw and decoded: 32 MiB. */
export const DEFAULT_BODY_LIMIT_BYTES = 32 * 1024 * 1024;

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
  const unknown = codings.find((coding) => !canDecode(coding));
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
      data = await decodeWhole(coding, data, limitBytes);
    } catch (err) {
      if (isTooLarge(err)) throw new BodyTooLargeError(limitBytes);
      throw new ContentDecodingError(`body is not valid ${coding} data`, { cause: err });
    }
  }
  return data;
}

function destroy(body: unknown): void {
  const maybe = body as { destroy?: (error?: Error) => void };
  if (typeof maybe.destroy === 'function') maybe.destroy();
}
