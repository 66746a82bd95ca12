// Postgres LISTEN on the channels the migrations' triggers notify: every API process drops its
// cached token the moment any process writes a credential (0002, 0005), and its copy of a client
// key the moment one is created or revoked (0005).
//
// A listener can die silently (a black-holed connection never reports an error), so this one
// checks itself: TCP keepalive, plus a query on the listening connection every `heartbeatMs`
// that must answer within `heartbeatTimeoutMs`, else the connection is dropped and made again.
// Every (re)connect calls onReconnect: anything may have changed while nobody listened. The
// callers also re-check on a timer (src/clientKeys/registry.ts, src/credentials/tokenCache.ts),
// so even a listener that is down bounds how long a change goes unseen.
import pg from 'pg';
import type { Logger } from '../logger.js';

export const CREDENTIAL_CHANGES_CHANNEL = 'maestro_credential_changed';
export const API_KEY_CHANGES_CHANNEL = 'maestro_api_key_changed';
/** Pools and their routing state (0010): the payload names the table that changed. */
export const ROUTING_CHANGES_CHANNEL = 'maestro_routing_changed';

export interface ChangeListener {
  close(): Promise<void>;
}

export interface ListenOptions {
  log?: Logger;
  /** Called after every successful (re)connect, the first included. */
  onReconnect?: () => void;
  retryMs?: number;
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
}

/** Calls handlers[channel](payload) for each notification; reconnects (and calls onReconnect) after a drop. */
export function listenForChanges(
  url: string,
  handlers: Record<string, (payload: string) => void>,
  opts: ListenOptions = {},
): ChangeListener {
  const heartbeatMs = opts.heartbeatMs ?? 5_000;
  const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 3_000;
  // The connection being made or in use; a drop of any other (an older one) is ignored.
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;

  const dropped = new WeakSet<pg.Client>();
  const drop = (c: pg.Client) => {
    if (dropped.has(c)) return;
    dropped.add(c);
    // end() waits for the server, which a black-holed connection never answers: cut the socket too.
    c.end().catch(() => {});
    (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  };
  const connect = async () => {
    if (closed) return;
    // Bounded connect and queries: a server that stops answering mid-connect must not stall the retries.
    const c = new pg.Client({
      application_name: 'maestro-listener',
      connectionString: url,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5_000,
      connectionTimeoutMillis: 5_000,
      query_timeout: 10_000,
    });
    client = c;
    c.on('notification', (msg) => {
      if (msg.payload) handlers[msg.channel]?.(msg.payload);
    });
    c.on('error', () => reconnect(c));
    c.on('end', () => reconnect(c));
    try {
      await c.connect();
      for (const channel of Object.keys(handlers)) await c.query(`LISTEN ${channel}`);
      if (closed || client !== c) return drop(c);
      heartbeat = setInterval(() => beat(c), heartbeatMs);
      heartbeat.unref();
      opts.onReconnect?.();
    } catch (error) {
      opts.log?.warn({ error: (error as Error).message }, 'change listener could not connect; retrying');
      reconnect(c);
    }
  };
  const beat = (c: pg.Client) => {
    let answered = false;
    const timer = setTimeout(() => {
      if (!answered) {
        opts.log?.warn({ timeoutMs: heartbeatTimeoutMs }, 'change listener did not answer its heartbeat; reconnecting');
        reconnect(c);
      }
    }, heartbeatTimeoutMs);
    c.query('select 1').then(
      () => {
        answered = true;
        clearTimeout(timer);
      },
      () => {
        answered = true;
        clearTimeout(timer);
        reconnect(c);
      },
    );
  };
  const reconnect = (c: pg.Client) => {
    if (client !== c || closed || retry) return drop(c); // an older connection, or a retry already set
    client = undefined;
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = undefined;
    drop(c);
    retry = setTimeout(() => {
      retry = undefined;
      void connect();
    }, opts.retryMs ?? 1_000);
  };
  void connect();
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      if (heartbeat) clearInterval(heartbeat);
      const c = client;
      client = undefined;
      if (c) {
        // A clean end when the server answers; never wait on one that does not.
        await Promise.race([c.end().catch(() => {}), new Promise((r) => setTimeout(r, 1_000).unref())]);
        drop(c);
      }
    },
  };
}
