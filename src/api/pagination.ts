// `limit` and `cursor` on the /v1 list routes (and the admin page's lists). Items are ordered by
// (createdAt, id); the cursor is opaque to callers: base64url JSON of the last item's pair, so a
// page boundary survives rows added or deleted in between. Without `limit` every item comes back.
import { z } from 'zod';
import { ValidationError } from '../errors.js';

export const MAX_PAGE_SIZE = 500;

export const pageQuery = {
  limit: z.coerce
    .number({ error: `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}` })
    .int(`limit must be a whole number from 1 to ${MAX_PAGE_SIZE}`)
    .min(1, `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}`)
    .max(MAX_PAGE_SIZE, `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}`)
    .optional()
    .meta({ description: `page size (1–${MAX_PAGE_SIZE}); unset: every item` }),
  cursor: z.string().max(512, 'cursor is too long').optional().meta({ description: 'nextCursor of the previous page' }),
};

export const nextCursorSchema = z
  .string()
  .nullable()
  .meta({ description: 'pass as `cursor` for the next page; null on the last page (or without `limit`)' });

interface Ordered {
  id: string;
  createdAt: string;
}

const encode = (item: Ordered) => Buffer.from(JSON.stringify([item.createdAt, item.id])).toString('base64url');

function decode(cursor: string): [string, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'string')) return value as [string, string];
  } catch {
    // answered below
  }
  throw new ValidationError('cursor is not one this API gave out (pass nextCursor unchanged)');
}

const before = (a: Ordered, b: Ordered) =>
  a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

/** One page of `items` after `cursor`, at most `limit` long, and the cursor of the next page. */
export function paginate<T extends Ordered>(
  items: T[],
  page: { limit?: number; cursor?: string },
): { items: T[]; nextCursor: string | null } {
  const sorted = [...items].sort(before);
  let rest = sorted;
  if (page.cursor !== undefined) {
    const [createdAt, id] = decode(page.cursor);
    rest = sorted.filter((item) => before(item, { createdAt, id }) > 0);
  }
  if (page.limit === undefined) return { items: rest, nextCursor: null };
  const shown = rest.slice(0, page.limit);
  return { items: shown, nextCursor: rest.length > page.limit ? encode(shown.at(-1)!) : null };
}
