// Registers Maestro's search attributes on a Temporal namespace (idempotent). The embedded dev
// server registers them at start; against an external server the worker tries this at start and
// an operator can run it (or `temporal operator search-attribute create`) with the right rights.
import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { MAESTRO_SEARCH_ATTRIBUTES } from '../workflows/searchAttributes.js';

// @temporalio/proto is CommonJS: take the namespace from its default export (works under tsx and vitest).
const { temporal } = proto;

const INDEXED_TYPE = {
  KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  DATETIME: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
} as const;

export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService
    .listSearchAttributes({ namespace })
    .then((r) => new Set(Object.keys(r.customAttributes ?? {})))
    .catch(() => new Set<string>());
  const missing = MAESTRO_SEARCH_ATTRIBUTES.filter((key) => !existing.has(key.name));
  if (missing.length === 0) return [];
  const searchAttributes: Record<string, proto.temporal.api.enums.v1.IndexedValueType> = {};
  for (const key of missing) searchAttributes[key.name] = INDEXED_TYPE[key.type as keyof typeof INDEXED_TYPE];
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
  return missing.map((key) => key.name);
}
