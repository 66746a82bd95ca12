// Pools across two real API processes and a stopped database (DESIGN.md "Pools"): a worker and two
// API children, the Temporal dev server, a private PostgreSQL the test stops and starts.
//   - a cooldown one API process sets is honoured by the other within about a second: the other
//     sends nothing more to that member;
//   - with PostgreSQL stopped, pooled calls keep being served from each process's memory, a
//     passing 429 still fails over (the bench lives in memory; its write is logged and dropped),
//     and what needs the database answers 503 with Retry-After, never 500;
//   - once PostgreSQL is back, a bench set in one process reaches the other again.
import { afterAll, beforeAll, expect, inject, it, onTestFailed } from 'vitest';
import { killAllChildren } from '../support/children.js';
import { startDevServer, startOwnPostgres, type DevServer, type OwnPostgres } from '../support/processes.js';
import { sleep, until } from '../support/wait.js';
import { startRig, type ApiChild, type Rig } from './rig.js';

let dev: DevServer;
let pgServer: OwnPostgres;
let rig: Rig;
let apis: ApiChild[];
const tokenOf = new Map<string, string>();

/** A pooled call through `api`: its status and the member that served. */
async function pooled(api: ApiChild, session: string) {
  const answer = await api.call('POST', '/proxy/anthropic/v1/messages', {
    body: { model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] },
    headers: { 'anthropic-version': '2023-06-01', 'x-maestro-pool': 'team', 'x-claude-code-session-id': session },
  });
  return { status: answer.status, member: answer.headers.get('x-maestro-credential-id') ?? undefined, text: answer.text };
}
const bare429 = {
  status: 429,
  body: { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } },
  headers: { 'retry-after': '30' },
};
/** Which members the provider saw since request number `from`. */
const seenSince = (from: number) =>
  new Set(
    rig.fake
      .apiRequests()
      .slice(from)
      .map((r) => tokenOf.get(String(r.headers.authorization).replace(/^Bearer /, ''))),
  );

beforeAll(async () => {
  [dev, pgServer] = await Promise.all([startDevServer(inject('temporalCliPath')), startOwnPostgres()]);
  rig = await startRig({ dev, dbUrl: pgServer.url, fake: { accessTokenTtlSec: 3600 } });
  await rig.startWorker();
  apis = [await rig.startApi(), await rig.startApi()];
  const members = [];
  for (const name of ['alice', 'bob', 'carol']) {
    const c = await rig.importOAuth({ name, lifetimeMs: 3600_000 });
    tokenOf.set(c.accessToken, c.id);
    members.push({ credential: c.id });
  }
  const created = await apis[0]!.call('POST', '/v1/pools', { body: { name: 'team', provider: 'anthropic', members } });
  expect(created.status, created.text).toBe(201);
  // Both processes know the pool and have loaded every member's token (sessions spread over them).
  for (const api of apis) {
    await until(async () => (await api.call('GET', '/v1/pools/team')).status === 200, { what: 'the pool on every API process' });
    const served = new Set<string | undefined>();
    for (let i = 0; served.size < 3 && i < 60; i++) served.add((await pooled(api, `warm-${api.port}-${i}`)).member);
    expect(served.size).toBe(3);
  }
}, 240_000);

afterAll(async () => {
  if (pgServer && !pgServer.up) await pgServer.start().catch(() => {});
  await rig?.close();
  await dev?.close();
  await killAllChildren();
  await pgServer?.close();
});

it('shares a cooldown between two API processes within a second, and keeps routing from memory while PostgreSQL is stopped', async () => {
  // A failure shows what the children said last (a child that died says why here).
  onTestFailed(() => console.error(`--- the children's last lines ---\n${rig.logLines().slice(-60).join('\n')}`));
  const [one, two] = apis as [ApiChild, ApiChild];
  // A passing 429 on process one: it fails over and cools that member (≤ 60 s) for everyone.
  const session = 'shared-1';
  const home = (await pooled(one, session)).member!;
  rig.fake.failNextApi([bare429]);
  const failedOver = await pooled(one, session);
  expect(failedOver.status, failedOver.text).toBe(200);
  expect(failedOver.member).not.toBe(home);
  await sleep(1_500);
  const from = rig.fake.apiRequests().length;
  for (let i = 0; i < 12; i++) expect((await pooled(two, `two-${i}`)).status).toBe(200);
  expect(seenSince(from).has(home), 'process two sent a call to the member process one cooled').toBe(false);

  // PostgreSQL stops: both processes keep serving pooled calls from memory, and a 429 still fails over.
  await pgServer.stop();
  try {
    for (const api of apis) for (let i = 0; i < 6; i++) expect((await pooled(api, `outage-${api.port}-${i}`)).status).toBe(200);
    rig.fake.failNextApi([bare429]);
    const during = await pooled(two, 'outage-failover');
    expect(during.status, during.text).toBe(200);
    const needsDb = await one.call('GET', '/v1/pools/team');
    expect(needsDb.status, needsDb.text).toBe(503);
    expect(needsDb.headers.get('retry-after')).not.toBeNull();
  } finally {
    await pgServer.start();
  }

  // Back: a bench set by process two reaches process one again (the listeners reconnected).
  await until(async () => (await one.call('GET', '/v1/pools/team')).status === 200, { timeoutMs: 60_000, what: 'the database back' });
  await sleep(2_000);
  const again = 'after-1';
  const before = (await pooled(two, again)).member!;
  rig.fake.failNextApi([bare429]);
  expect((await pooled(two, again)).member).not.toBe(before);
  await sleep(1_500);
  const from2 = rig.fake.apiRequests().length;
  for (let i = 0; i < 12; i++) expect((await pooled(one, `one-after-${i}`)).status).toBe(200);
  expect(seenSince(from2).has(before), 'process one sent a call to the member process two cooled').toBe(false);
}, 240_000);
