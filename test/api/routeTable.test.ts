// The /v1 route table is the one declaration of the routes: these checks keep its entries whole.
import { describe, expect, it } from 'vitest';
import { V1_ROUTES } from '../../src/api/routes/v1.js';

describe('the /v1 route table', () => {
  it('lets client keys reach only the listings, durable calls (through a credential or a pool) and their own usage', () => {
    const client = V1_ROUTES.filter((r) => r.role === 'client').map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(client).toEqual([
      'GET /credentials',
      'POST /credentials/{id}/messages',
      'GET /pools',
      'GET /pools/{id}',
      'POST /pools/{id}/messages',
      'GET /usage',
    ]);
  });

  it('declares every path parameter, one operation per method and path, unique operation ids', () => {
    for (const route of V1_ROUTES) {
      const inPath = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      expect(Object.keys(route.request?.params?.shape ?? {}), route.path).toEqual(inPath);
    }
    const operations = V1_ROUTES.map((r) => `${r.method} ${r.path}`);
    expect(new Set(operations).size).toBe(operations.length);
    const ids = V1_ROUTES.map((r) => r.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
