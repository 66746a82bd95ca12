// Puts Claude Code's system block first in an Anthropic request body by editing the text around
// the top-level `system` member only. Every other byte is kept as the client sent it: integers past
// 2^53, key order, spacing and escapes survive (a parse-and-stringify would round them).
//
// JSON.parse still reads the body (it decides what to do and rejects what is not JSON); the scan
// below only finds where the top-level members start and end (src/auth/jsonMembers.ts).
import { Scanner, setTopLevelMember } from './jsonMembers.js';

/**
 * Makes `text` the first system block, exactly once: added when missing (a string `system`
 * becomes an array of text blocks), moved to the front when present later, untouched when
 * already first. A body that is not a JSON object, or a `system` of an unknown shape, is
 * returned unchanged (the provider will answer it). Earlier duplicates of `system` are dropped, so
 * the provider sees the one that JSON.parse (the last) reads.
 */
export function prependSystemBlock(body: Buffer, text: string): Buffer {
  const source = body.toString('utf8');
  let request: unknown;
  try {
    request = JSON.parse(source);
  } catch {
    return body;
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) return body;
  const system = (request as Record<string, unknown>).system;
  const block = JSON.stringify({ type: 'text', text });
  const isOurs = (b: unknown) =>
    b !== null && typeof b === 'object' && (b as Record<string, unknown>).type === 'text' && (b as Record<string, unknown>).text === text;

  const scan = new Scanner(source);
  const members = scan.objectMembers(scan.skipSpace(0));
  const systems = members.filter((m) => m.key === 'system');
  const last = systems.at(-1);

  let value: string;
  if (system === undefined || system === null || system === '') {
    value = `[${block}]`;
  } else if (typeof system === 'string') {
    value = system === text ? `[${block}]` : `[${block},{"type":"text","text":${source.slice(last!.valueStart, last!.end)}}]`;
  } else if (Array.isArray(system)) {
    if (isOurs(system[0]) && systems.length === 1) return body;
    const elements = scan.arrayElements(last!.valueStart).map(([s, e]) => source.slice(s, e));
    const at = system.findIndex(isOurs);
    value = `[${(at === -1 ? [block, ...elements] : [elements[at]!, ...elements.filter((_, i) => i !== at)]).join(',')}]`;
  } else {
    return body;
  }

  // Earlier `system` members dropped, the last one's value replaced (or one added up front).
  return setTopLevelMember(body, 'system', value, { source, members });
}
