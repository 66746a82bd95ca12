// Puts Claude Code's system block first in an Anthropic request body by editing the text around
// the top-level `system` member only. Every other byte is kept as the client sent it: integers past
// 2^53, key order, spacing and escapes survive (a parse-and-stringify would round them).
//
// JSON.parse still reads the body (it decides what to do and rejects what is not JSON); the scan
// below only finds where the top-level members start and end.

interface Member {
  /** Decoded key. */
  key: string;
  /** Offsets of the whole member (key through value) and of its value alone. */
  start: number;
  valueStart: number;
  end: number;
}

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

  // Rebuild: drop earlier `system` members, replace the last one's value (or add one up front).
  let out = '';
  let from = 0;
  for (const m of systems.slice(0, -1)) {
    const cut = removalSpan(source, members, m);
    out += source.slice(from, cut[0]);
    from = cut[1];
  }
  if (last) {
    out += source.slice(from, last.valueStart) + value + source.slice(last.end);
  } else {
    const open = scan.skipSpace(0) + 1;
    out += source.slice(from, open) + `"system":${value}${members.length ? ',' : ''}` + source.slice(open);
  }
  return Buffer.from(out, 'utf8');
}

/** A member's text plus the comma that joins it to the next member (or the previous one, when last). */
function removalSpan(source: string, members: Member[], m: Member): [number, number] {
  const i = members.indexOf(m);
  const next = members[i + 1];
  if (next) return [m.start, next.start];
  const previous = members[i - 1]!;
  return [previous.end, m.end];
}

/** Finds value boundaries in text JSON.parse has already accepted (so no error paths are needed). */
class Scanner {
  constructor(private readonly s: string) {}

  skipSpace(i: number): number {
    while (i < this.s.length && ' \t\n\r'.includes(this.s[i]!)) i++;
    return i;
  }

  /** The end of the string token starting at i (a double quote). */
  private stringEnd(i: number): number {
    for (let j = i + 1; ; j++) {
      const c = this.s[j];
      if (c === '\\') j++;
      else if (c === '"') return j + 1;
    }
  }

  /** The end of the value starting at i. */
  valueEnd(i: number): number {
    const c = this.s[i];
    if (c === '"') return this.stringEnd(i);
    if (c === '{' || c === '[') {
      let depth = 0;
      for (let j = i; ; j++) {
        const d = this.s[j];
        if (d === '"') j = this.stringEnd(j) - 1;
        else if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') {
          depth--;
          if (depth === 0) return j + 1;
        }
      }
    }
    let j = i;
    while (j < this.s.length && !',]} \t\n\r'.includes(this.s[j]!)) j++;
    return j;
  }

  /** The members of the object whose `{` is at i. */
  objectMembers(i: number): Member[] {
    const members: Member[] = [];
    let j = this.skipSpace(i + 1);
    while (this.s[j] !== '}') {
      const start = j;
      const keyEnd = this.stringEnd(j);
      const key = JSON.parse(this.s.slice(j, keyEnd)) as string;
      const valueStart = this.skipSpace(this.skipSpace(keyEnd) + 1); // past the colon
      const end = this.valueEnd(valueStart);
      members.push({ key, start, valueStart, end });
      j = this.skipSpace(end);
      if (this.s[j] === ',') j = this.skipSpace(j + 1);
    }
    return members;
  }

  /** [start, end) of each element of the array whose `[` is at i. */
  arrayElements(i: number): Array<[number, number]> {
    const elements: Array<[number, number]> = [];
    let j = this.skipSpace(i + 1);
    while (this.s[j] !== ']') {
      const end = this.valueEnd(j);
      elements.push([j, end]);
      j = this.skipSpace(end);
      if (this.s[j] === ',') j = this.skipSpace(j + 1);
    }
    return elements;
  }
}
