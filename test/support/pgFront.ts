// A TCP relay in front of PostgreSQL that can black-hole the connections that LISTEN: their bytes
// stop flowing both ways while the sockets stay open, as when a NAT or firewall silently drops a
// long-lived connection. Nothing is closed, so neither side hears of it; other connections, and
// new ones, flow as before. Used to prove a dead change listener cannot keep a revoked key alive.
import net from 'node:net';

export interface PgFront {
  /** postgres://… through the relay (same credentials and database as `target`). */
  url: string;
  /** How many relayed connections have sent LISTEN. */
  listeners(): number;
  /** Stops every LISTEN connection's traffic, silently; returns how many. */
  blackHoleListeners(): number;
  close(): Promise<void>;
}

export async function startPgFront(target: string): Promise<PgFront> {
  const upstream = new URL(target);
  const pairs = new Set<{ client: net.Socket; server: net.Socket; listening: boolean; holed: boolean }>();
  const relay = net.createServer((client) => {
    const server = net.connect(Number(upstream.port || 5432), upstream.hostname);
    const pair = { client, server, listening: false, holed: false };
    pairs.add(pair);
    client.on('data', (chunk) => {
      if (pair.holed) return; // swallowed: the server never hears it
      // Simple-query messages carry their SQL as text: enough to spot the listener.
      if (!pair.listening && chunk.includes('LISTEN maestro_')) pair.listening = true;
      server.write(chunk);
    });
    server.on('data', (chunk) => {
      if (!pair.holed) client.write(chunk);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('close', end).on('error', end);
    server.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((relay.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    listeners: () => [...pairs].filter((p) => p.listening && !p.holed).length,
    blackHoleListeners() {
      let n = 0;
      for (const p of pairs) {
        if (p.listening && !p.holed) {
          p.holed = true;
          n++;
        }
      }
      return n;
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.server.destroy();
      }
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}
