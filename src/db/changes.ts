// Postgres LISTEN on the channel the 0002 migration's trigger notifies: every API instance drops
// its cached token the moment any process writes a new version of a credential.
import pg from 'pg';
import type { Logger } from '../logger.js';

export const CREDENTIAL_CHANGES_CHANNEL = 'maestro_credential_changed';

export interface ChangeListener {
  close(): Promise<void>;
}

/** Calls onChange(credentialId) for each change; reconnects (and calls onReconnect) after a drop. */
export function listenForCredentialChanges(
  url: string,
  onChange: (credentialId: string) => void,
  opts: { log?: Logger; onReconnect?: () => void; retryMs?: number } = {},
): ChangeListener {
  let client: pg.Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url });
    c.on('notification', (msg) => {
      if (msg.channel === CREDENTIAL_CHANGES_CHANNEL && msg.payload) onChange(msg.payload);
    });
    c.on('error', () => reconnect(c));
    c.on('end', () => reconnect(c));
    try {
      await c.connect();
      await c.query(`LISTEN ${CREDENTIAL_CHANGES_CHANNEL}`);
      client = c;
      // Anything may have changed while we were not listening.
      opts.onReconnect?.();
    } catch (error) {
      opts.log?.warn({ error: (error as Error).message }, 'credential change listener could not connect; retrying');
      reconnect(c);
    }
  };
  const reconnect = (c: pg.Client) => {
    if (closed || timer) return;
    if (client === c) client = undefined;
    c.end().catch(() => {});
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, opts.retryMs ?? 1_000);
  };
  void connect();
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await client?.end().catch(() => {});
    },
  };
}
