// A signal that fires when the HTTP client goes away before its answer was sent: it aborts an
// upstream call and releases a refresh wait (route and proxy alike).
import type { ServerResponse } from 'node:http';

export function whileConnected(res: ServerResponse): AbortSignal {
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  return gone.signal;
}
