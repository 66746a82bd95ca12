// Finding and editing the top-level members of a JSON object in its text, so that every other
// byte stays as the client sent it (integers past 2^53, key order, spacing and escapes survive a
// change that a parse-and-stringify would round). Used on bodies JSON.parse has already accepted.

export interface Member {
  /** Decoded key. */
  key: string;
  /** Offsets of the whole member (key through value) and of its value alone. */
  start: number;
  valueStart: number;
  end: number;
}

/**
 * `body` with its top-level member `key` set to `valueJson` (JSON text): the last member of that
 * name gets the new value (the one JSON.parse reads), earlier duplicates are dropped; a missing
 * member is added first. `body` must be a JSON object JSON.parse accepts; a caller that has
 * scanned it already passes its text and members (no second scan).
 */
export function setTopLevelMember(body: Buffer, key: string, valueJson: string, scanned?: { source: string; members: Member[] }): Buffer {
  const source = scanned?.source ?? body.toString('utf8');
  const scan = new Scanner(source);
  const open = scan.skipSpace(0);
  const members = scanned?.members ?? scan.objectMembers(open);
  const same = members.filter((m) => m.key === key);
  const last = same.at(-1);
  let out = '';
  let from = 0;
  for (const m of same.slice(0, -1)) {
    const cut = removalSpan(source, members, m);
    out += source.slice(from, cut[0]);
    from = cut[1];
  }
  if (last) out += source.slice(from, last.valueStart) + valueJson + source.slice(last.end);
  else out += source.slice(from, open + 1) + `${JSON.stringify(key)}:${valueJson}${members.length ? ',' : ''}` + source.slice(open + 1);
  return Buffer.from(out, 'utf8');
}

/** A member's text plus the comma that joins it to the next member (or the previous one, when last). */
export function removalSpan(source: string, members: Member[], m: Member): [number, number] {
  const i = members.indexOf(m);
  const next = members[i + 1];
  if (next) return [m.start, next.start];
  const previous = members[i - 1]!;
  return [previous.end, m.end];
}

/** Finds value boundaries in text JSON.parse has already accepted (so no error paths are needed). */
export class Scanner {
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
