// The Temporal client's call context switched off while no call needs it.
//
// @temporalio/client keeps a call's deadline, abort signal and metadata in an AsyncLocalStorage
// (Connection.callContextStorage). On Node 20, once any AsyncLocalStorage runs, async_hooks stay on
// for the whole process: every promise, socket and timer then runs an init hook, and every native
// callback goes through a JavaScript trampoline. That cost 5–12 % of a proxied call's CPU
// (docs/BENCHMARKS.md §6). The client turns the storage on when it connects (ensureConnected runs
// withDeadline), for every workflow-service call that names a namespace (its namespace header is
// set with withMetadata), and Maestro's bounded updates turn it on for each call (withAbortSignal).
// So: off after connecting, and off again whenever the last call that uses it has settled.
//
// Safe because the client reads the storage only when an RPC starts, synchronously, and every RPC
// that could read a context runs inside a counted call: the workflow service's methods are counted
// one by one (quietCallContext), and a scope like withAbortSignal, which spans several RPCs, is
// counted as a whole (withCallContext).

/** What this needs of an AsyncLocalStorage (or a test's stand-in). */
export interface CallContextStorage {
  disable(): void;
}

const running = new WeakMap<CallContextStorage, number>();

/** The client connection's call-context storage, when the connection has one (not in every client). */
export function callContextOf(connection: unknown): CallContextStorage | undefined {
  const storage = (connection as { callContextStorage?: Partial<CallContextStorage> } | null)?.callContextStorage;
  return typeof storage?.disable === 'function' ? (storage as CallContextStorage) : undefined;
}

/**
 * Runs `call` (a client call made inside withAbortSignal, withDeadline or withMetadata) and turns
 * the storage off once it and every other such call have settled. Await the whole call here, not a
 * race around it: the storage must stay on until the call itself is done.
 */
export async function withCallContext<T>(storage: CallContextStorage | undefined, call: () => Promise<T>): Promise<T> {
  if (!storage) return await call();
  running.set(storage, (running.get(storage) ?? 0) + 1);
  try {
    return await call();
  } finally {
    const left = running.get(storage)! - 1;
    running.set(storage, left);
    if (left === 0) storage.disable();
  }
}

/**
 * After the client connected: counts every call of the connection's workflow service (the
 * namespace header's withMetadata would otherwise turn the storage on for good at the first one)
 * and turns the storage off now. Nothing when the connection has no such storage.
 */
export function quietCallContext(connection: unknown): void {
  const storage = callContextOf(connection);
  if (!storage) return;
  const service = (connection as { workflowService?: Record<string, unknown> }).workflowService;
  for (const [name, method] of Object.entries(service ?? {})) {
    if (typeof method !== 'function') continue;
    const rpc = method as (...args: unknown[]) => Promise<unknown>;
    service![name] = (...args: unknown[]) => withCallContext(storage, () => rpc.apply(service, args));
  }
  releaseCallContext(storage);
}

/** Turns the storage off now unless a call that uses it is running. */
export function releaseCallContext(storage: CallContextStorage | undefined): void {
  if (storage && !running.get(storage)) storage.disable();
}
