// Small helpers for reading JSON on bytes without parsing it (JSON's structure characters are
// ASCII, so UTF-8 bytes can be scanned directly), and for the few values that are parsed.

export const KEY_MODEL = Buffer.from('"model"');
export const KEY_USAGE = Buffer.from('"usage"');
export const KEY_ERROR = Buffer.from('"error"');
export const KEY_USAGE_METADATA = Buffer.from('"usageMetadata"');
export const KEY_MODEL_VERSION = Buffer.from('"modelVersion"');
export const KEY_FINISH_REASON = Buffer.from('"finishReason"');
const TYPE_PREFIX = Buffer.from('{"type":"');

export function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** The number of backslashes right before `at`, not looking before `floor`. */
export function backslashesBefore(bytes: Buffer, at: number, floor: number): number {
  let k = at - 1;
  while (k >= floor && bytes[k] === 0x5c) k--;
  return at - 1 - k;
}

/** Where `key` (a quoted name) occurs as a key of this JSON text: not inside a string (escaped quotes) and followed by a colon. */
export function findKey(bytes: Buffer, key: Buffer, from: number): number {
  let at = bytes.indexOf(key, from);
  while (at !== -1) {
    if ((at === 0 || bytes[at - 1] !== 0x5c) && bytes[skipSpaces(bytes, at + key.length)] === 0x3a) return at;
    at = bytes.indexOf(key, at + 1);
  }
  return -1;
}

export function findLastKey(bytes: Buffer, key: Buffer): number {
  let at = bytes.lastIndexOf(key);
  while (at !== -1) {
    if ((at === 0 || bytes[at - 1] !== 0x5c) && bytes[skipSpaces(bytes, at + key.length)] === 0x3a) return at;
    at = at === 0 ? -1 : bytes.lastIndexOf(key, at - 1);
  }
  return -1;
}

export function skipSpaces(bytes: Buffer, at: number): number {
  while (at < bytes.length && isSpace(bytes[at]!)) at++;
  return at;
}

/** The index of the value after a key ending at `afterKey` (past the colon and spaces). */
export function valueAt(bytes: Buffer, afterKey: number): number {
  const colon = skipSpaces(bytes, afterKey);
  return skipSpaces(bytes, colon + 1);
}

/** The index just past the object or array starting at `start`, or -1 when it is not complete (a JS loop: meant for small values). */
export function closingEnd(bytes: Buffer, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** The JSON string starting at `start`, decoded, or undefined. */
export function stringAt(bytes: Buffer, start: number): string | undefined {
  if (bytes[start] !== 0x22) return undefined;
  let quote = bytes.indexOf(0x22, start + 1);
  while (quote !== -1 && backslashesBefore(bytes, quote, start + 1) % 2 === 1) quote = bytes.indexOf(0x22, quote + 1);
  if (quote === -1 || quote - start > 512) return undefined;
  const raw = bytes.subarray(start, quote + 1);
  if (raw.indexOf(0x5c) === -1) return raw.toString('utf8', 1, raw.length - 1);
  const value = parse(raw);
  return typeof value === 'string' ? value : undefined;
}

/** A data payload's `{"type":"…"` (as Anthropic and the Responses API write it), or undefined. */
export function sniffType(data: Buffer): string | undefined {
  if (!startsWith(data, TYPE_PREFIX)) return undefined;
  const end = data.indexOf(0x22, TYPE_PREFIX.length);
  if (end === -1 || end - TYPE_PREFIX.length > 64) return undefined;
  return data.toString('latin1', TYPE_PREFIX.length, end);
}

/** Whether the JSON object in `bytes` starts with the key `key` (e.g. `{"error": …`). */
export function startsWithKey(bytes: Buffer, key: Buffer): boolean {
  const open = skipSpaces(bytes, 0);
  if (bytes[open] !== 0x7b) return false;
  const at = skipSpaces(bytes, open + 1);
  if (bytes.length - at < key.length) return false;
  for (let i = 0; i < key.length; i++) if (bytes[at + i] !== key[i]) return false;
  return bytes[skipSpaces(bytes, at + key.length)] === 0x3a;
}

export function parse(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** A token count: a finite, non-negative number (rounded down), else undefined. */
export function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
}
