// Request bodies that stop arriving. Node's own requestTimeout bounds a whole request (and is
// checked only every connectionsCheckingInterval); a client that sends a body one byte short
// would otherwise hold its connection and buffer that long. A body with no new byte for `idleMs`
// is answered 408 and its connection closed (src/api/errors.ts sendError).
//
// One sweep for the process, not a timer per request (the proxy's hot path): the sweep compares
// each watched request's socket.bytesRead with the last look. Bytes waiting in the request's own
// buffer mean Maestro is the one not reading (back-pressure from a slow provider): not a stall.
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../errors.js';

export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 30_000;

interface Watched {
  req: IncomingMessage;
  bytes: number;
  at: number;
  onStall: () => void;
}

const bytesRead = (req: IncomingMessage) => req.socket?.bytesRead ?? 0;

/** The answer to a body that stopped arriving; sendError closes the connection after it. */
export function bodyStalled(idleMs: number): HttpError {
  const seconds = Math.round(idleMs / 100) / 10;
  return new HttpError(
    408,
    'request_timeout',
    `the request body stopped arriving for ${seconds} s; send the whole body without pauses (this connection is closed)`,
  );
}

export class StalledBodies {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly idleMs = DEFAULT_BODY_IDLE_TIMEOUT_MS) {}

  /** Calls onStall once if the body of `req` stops arriving for idleMs; returns the function that stops watching. */
  watch(req: IncomingMessage, onStall: () => void): () => void {
    const entry: Watched = { req, bytes: bytesRead(req), at: Date.now(), onStall };
    this.watched.add(entry);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), Math.min(1_000, Math.max(10, this.idleMs / 4)));
      this.timer.unref();
    }
    return () => this.forget(entry);
  }

  // The sweep stays once started (unref'd; an empty sweep costs nothing): stopping it whenever the
  // set emptied made one timer per request on a lightly loaded proxy, the cost this class avoids.
  private forget(entry: Watched): void {
    this.watched.delete(entry);
  }

  private sweep(now = Date.now()): void {
    for (const entry of this.watched) {
      if (entry.req.complete || entry.req.destroyed) {
        this.forget(entry); // the body is in, or the connection gone: nothing to wait for
        continue;
      }
      const bytes = bytesRead(entry.req);
      if (bytes !== entry.bytes || entry.req.readableLength > 0) {
        entry.bytes = bytes;
        entry.at = now;
      } else if (now - entry.at >= this.idleMs) {
        this.forget(entry);
        entry.onStall();
      }
    }
  }
}
