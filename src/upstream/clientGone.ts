// "The HTTP client went away before its answer was sent": it aborts an upstream call and releases
// a refresh wait (route and proxy alike).
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';

/**
 * An EventEmitter that emits `abort` once when the client goes away (undici takes one as a
 * request's signal), with an AbortSignal made only when something asks for it: an AbortController
 * per proxied call, and the DOMException its abort creates, cost more than the call's own
 * routing (docs/BENCHMARKS.md, issue 18), and most calls never need one.
 */
export class ClientGone extends EventEmitter {
  aborted = false;
  private controller: AbortController | undefined;

  constructor(res: ServerResponse) {
    super();
    res.once('close', () => {
      if (!res.writableFinished) this.abort();
    });
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  private abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.controller?.abort();
    this.emit('abort');
  }
}

export function whileConnected(res: ServerResponse): AbortSignal {
  return new ClientGone(res).signal;
}
