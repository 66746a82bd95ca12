// Real servers for fault tests: the Temporal dev server (the CLI that src/temporal/binaries.ts
// locates) on a fixed port with a database file so workflows survive a restart, a private embedded
// PostgreSQL that a test can stop and start again, and a gate in front of a fake token endpoint
// that can hold, fail or watch token calls. Everything listens on 127.0.0.1 only; the processes are
// children from ./children.ts, so killAllChildren() in afterAll stops them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { startEmbeddedPostgres, freePort as anyFreePort } from '../../src/db/embedded.js';
import { MAESTRO_SEARCH_ATTRIBUTES } from '../../src/workflows/searchAttributes.js';

import { spawnChild, type ChildHandle } from './children.js';
import { readAll } from './http.js';
import { testDataConverter } from './temporal.js';
import { until } from './wait.js';

/**
 * A free port for a child process to listen on, picked below the kernel's ephemeral port range.
 * A port from listen(0) comes from that range, and between this check and the child's own bind any
 * outgoing connection on the machine may take it as its source port: a dev server then failed to
 * start with "address already in use" (one fault run in four). Below the range only another pick
 * like this one can collide. Elsewhere (no /proc, a range starting low): any free port.
 */
export async function freePort(): Promise<number> {
  let low: number | undefined;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    low = undefined;
  }
  for (let tries = 0; low !== undefined && low > 20_000 && tries < 20; tries++) {
    const candidate = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if ((await anyFreePort(candidate)) === candidate) return candidate;
  }
  return anyFreePort();
}
// --- Temporal dev server ----------------------------------------------------------------------

export interface DevServer {
  address: string;
  port: number;
  dbFilename: string;
  /** A client of this server; it reconnects by itself after a restart. */
  client: Client;
  readonly child: ChildHandle;
  /** Starts a new server process on the same port and database file; reconnects `client`. */
  start(): Promise<void>;
  /** Stops the server process (SIGTERM: a clean shutdown; SIGKILL: a crash). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** A native connection for an in-process worker (the caller closes it). */
  nativeConnection(): Promise<NativeConnection>;
  close(): Promise<void>;
}

/**
 * `temporal server start-dev` on a fixed free port with a database file, as src/cli/stack.ts runs
 * it, but as a child process of its own so a test can stop, kill and restart it.
 */
export async function startDevServer(cliPath: string, opts: { dir?: string } = {}): Promise<DevServer> {
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'maestro-temporal-'));
  const ownDir = opts.dir === undefined;
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const dbFilename = path.join(dir, 'temporal.db');
  let child: ChildHandle | undefined;
  let connection: Connection | undefined;
  let client: Client | undefined;

  const start = async () => {
    const [httpPort, metricsPort] = [await freePort(), await freePort()];
    child = spawnChild(
      'temporal',
      cliPath,
      [
        'server',
        'start-dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--http-port',
        String(httpPort),
        '--metrics-port',
        String(metricsPort),
        '--headless',
        '--db-filename',
        dbFilename,
        '--namespace',
        'default',
        '--log-level',
        'error',
        ...MAESTRO_SEARCH_ATTRIBUTES.flatMap((key) => [
          '--search-attribute',
          `${key.name}=${key.type === 'DATETIME' ? 'Datetime' : 'Keyword'}`,
        ]),
      ],
      { env: {} },
    );
    const c = child;
    await until(
      async () => {
        if (!c.running) throw new Error(`temporal dev server exited: ${c.lines.slice(-10).join('\n')}`);
        // One connection for the server's whole life: after a restart its channel reconnects to
        // the same address, so clients handed out earlier (createCore, workers) keep working.
        connection ??= await Connection.connect({ address, connectTimeout: '1 second' });
        client ??= new Client({ connection, namespace: 'default', dataConverter: testDataConverter() });
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: `the Temporal dev server on ${address}` },
    );
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    await child?.kill(signal);
  };

  await start();
  return {
    address,
    port,
    dbFilename,
    get client() {
      return client!;
    },
    get child() {
      return child!;
    },
    start,
    stop,
    nativeConnection: () => NativeConnection.connect({ address }),
    close: async () => {
      await connection?.close().catch(() => {});
      await stop('SIGTERM');
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- PostgreSQL a test may stop -----------------------------------------------------------------

export interface OwnPostgres {
  /** postgres://…/maestro (created at start). */
  url: string;
  adminUrl: string;
  port: number;
  readonly up: boolean;
  /** Fast shutdown of the server: every connection is cut, new ones are refused. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A private embedded PostgreSQL (temp dir, free port) holding one database named `maestro`. */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'maestro-fault-pg-'));
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  let server = await startEmbeddedPostgres(dataDir, { port });
  const adminUrl = server.url;
  if (!adminUrl.includes(`:${port}/`)) throw new Error(`embedded PostgreSQL did not take port ${port}: ${adminUrl}`);
  const url = await server.createDatabase('maestro');
  let up = true;
  return {
    url,
    adminUrl,
    port,
    get up() {
      return up;
    },
    async stop() {
      if (!up) return;
      await server.stop();
      up = false;
    },
    async start() {
      if (up) return;
      server = await startEmbeddedPostgres(dataDir, { port });
      if (!server.url.includes(`:${port}/`)) throw new Error(`embedded PostgreSQL came back on another port: ${server.url}`);
      up = true;
    },
    async close() {
      if (up) await server.stop().catch(() => {});
      up = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- a gate in front of a token endpoint -------------------------------------------------------

export interface GateCall {
  /** The refresh_token (or code) the client presented. */
  presented?: string;
  status?: number;
  /** The refresh token the upstream answered with, if any. */
  issuedRefreshToken?: string;
  issuedAccessToken?: string;
  /** What happened to this call at the gate. */
  fate: 'held' | 'forwarded' | 'answered' | 'delivered' | 'lost' | 'refused' | 'dropped';
}

export interface TokenGate {
  /** Put this in MAESTRO_<PROVIDER>_OAUTH_TOKEN_URL. */
  url: string;
  /**
   * open: forward. hold: keep the request waiting at the gate (the client sees a call in flight;
   * the provider has not seen it). down: answer 503 without asking the provider. reset: cut the
   * connection without an answer.
   */
  mode: 'open' | 'hold' | 'down' | 'reset';
  calls: GateCall[];
  /** Requests currently held at the gate. */
  readonly held: number;
  /** Requests forwarded upstream whose answer has not yet been passed back. */
  readonly inFlight: number;
  /**
   * Runs after the provider answered and before the answer is passed back to the client.
   * Whatever it awaits (a kill -9, say) happens in the window where the provider has already
   * rotated the token and the client does not know it yet.
   */
  onAnswered?: (call: GateCall) => Promise<void> | void;
  /** Called with each request as it arrives (any mode). */
  onRequest?: (call: GateCall) => void;
  /** Releases held requests (forwarding those whose client is still connected). */
  release(): void;
  /** Releases the oldest held request only; false when none is held. */
  releaseOne(): boolean;
  close(): Promise<void>;
}

const field = (body: Buffer, name: string): string | undefined => {
  const text = body.toString('utf8');
  try {
    const value = (JSON.parse(text) as Record<string, unknown>)[name];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return new URLSearchParams(text).get(name) ?? undefined;
  }
};

export async function startTokenGate(upstreamTokenUrl: string): Promise<TokenGate> {
  const upstream = new URL(upstreamTokenUrl);
  const heldQueue: { call: GateCall; go: () => void }[] = [];
  let inFlight = 0;
  const sockets = new Set<Socket>();

  const forward = async (call: GateCall, req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    call.fate = 'forwarded';
    inFlight++;
    try {
      const headers = { ...req.headers, host: upstream.host };
      delete headers['accept-encoding']; // plain answers, so the gate can read them
      const answer = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const up = http.request(
          { host: upstream.hostname, port: upstream.port, path: upstream.pathname + upstream.search, method: req.method, headers },
          (r) => {
            readAll(r).then((b) => resolve({ status: r.statusCode ?? 502, headers: r.headers, body: b }), reject);
          },
        );
        up.on('error', reject);
        up.end(body);
      });
      call.status = answer.status;
      call.issuedRefreshToken = field(answer.body, 'refresh_token');
      call.issuedAccessToken = field(answer.body, 'access_token');
      call.fate = 'answered';
      if (gate.onAnswered) {
        await gate.onAnswered(call);
        // A client the hook killed: let its connection's end reach this socket before deciding.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (res.destroyed) {
        call.fate = 'lost'; // the provider answered, the client never got it
        return;
      }
      const out = { ...answer.headers, 'content-length': String(answer.body.length) };
      delete out['transfer-encoding'];
      delete out.connection;
      res.writeHead(answer.status, out);
      // (A socket that closes mid-write may never call end's callback: 'close' settles it too.)
      await new Promise<void>((resolve) => {
        res.once('close', () => resolve());
        res.end(answer.body, () => resolve());
      });
      call.fate = res.destroyed && !res.writableFinished ? 'lost' : 'delivered';
    } catch (error) {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'gate_upstream_error', error_description: (error as Error).message }));
      }
    } finally {
      inFlight--;
    }
  };

  const server = http.createServer(async (req, res) => {
    const body = await readAll(req).catch(() => Buffer.alloc(0));
    const call: GateCall = { presented: field(body, 'refresh_token') ?? field(body, 'code'), fate: 'held' };
    gate.calls.push(call);
    gate.onRequest?.(call);
    if (gate.mode === 'reset') {
      call.fate = 'refused';
      req.socket.destroy();
      return;
    }
    if (gate.mode === 'down') {
      call.fate = 'refused';
      call.status = 503;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'overloaded_error', message: 'gate: token endpoint is down' } }));
      return;
    }
    if (gate.mode === 'hold') {
      await new Promise<void>((resolve) => {
        const entry = { call, go: resolve };
        heldQueue.push(entry);
        res.once('close', () => {
          if (call.fate === 'held') {
            call.fate = 'dropped';
            const i = heldQueue.indexOf(entry);
            if (i >= 0) heldQueue.splice(i, 1);
            resolve();
          }
        });
      });
      if (call.fate === 'dropped' || res.destroyed) {
        call.fate = 'dropped';
        return;
      }
    }
    await forward(call, req, body, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const gate: TokenGate = {
    url: `http://127.0.0.1:${port}${upstream.pathname}`,
    mode: 'open',
    calls: [],
    get held() {
      return heldQueue.length;
    },
    get inFlight() {
      return inFlight;
    },
    release() {
      for (const entry of heldQueue.splice(0)) entry.go();
    },
    releaseOne() {
      const entry = heldQueue.shift();
      entry?.go();
      return entry !== undefined;
    },
    async close() {
      gate.release();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return gate;
}
