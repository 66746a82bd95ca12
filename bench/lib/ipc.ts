// Tiny request/response protocol over a forked child's IPC channel, so the load generator, the
// fake upstream, the bare forwarder and Maestro each get their own event loop (and process).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

type Handler = (args: any) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any -- IPC payloads are plain JSON

interface Reply {
  id: number;
  result?: unknown;
  error?: string;
}

/** In a child: answer the parent's commands; `ready` is sent once with the given info. */
export function serve(handlers: Record<string, Handler>, ready: unknown): void {
  if (!process.send) throw new Error('this file runs as a child of a bench (forked with IPC)');
  process.on('message', (msg: { id: number; cmd: string; args: unknown }) => {
    const handler = handlers[msg.cmd];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${msg.cmd}`);
        return handler(msg.args);
      })
      .then(
        (result) => process.send!({ id: msg.id, result } satisfies Reply),
        (error: unknown) =>
          process.send!({ id: msg.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies Reply),
      );
  });
  // The parent going away ends the child: nothing outlives a bench.
  process.on('disconnect', () => process.exit(0));
  process.send({ id: 0, result: ready } satisfies Reply);
}

export interface Child<R = unknown> {
  proc: ChildProcess;
  ready: R;
  call<T = unknown>(cmd: string, args?: unknown): Promise<T>;
  /** Asks the child to exit by itself (so --cpu-prof files get written), then kills it after a grace period. */
  stop(graceMs?: number): Promise<void>;
}

/** Forks `file` (a .ts next to the caller) under the same tsx loader; resolves once it is ready. */
export async function spawnChild<R = unknown>(
  file: string | URL,
  opts: { args?: string[]; execArgv?: string[]; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Child<R>> {
  const path = file instanceof URL ? fileURLToPath(file) : file;
  const proc = fork(path, opts.args ?? [], {
    execArgv: [...process.execArgv, ...(opts.execArgv ?? [])],
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: opts.cwd,
    serialization: 'advanced',
  });
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => proc.once('exit', () => ((exited = true), resolve())));
  const ready = await new Promise<R>((resolve, reject) => {
    proc.on('message', (msg: Reply) => {
      if (msg.id === 0) {
        if (msg.error) reject(new Error(msg.error));
        else resolve(msg.result as R);
        return;
      }
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(msg.error));
      else p.resolve(msg.result);
    });
    proc.once('exit', (code) => {
      reject(new Error(`${path} exited with ${code} before it was ready`));
      for (const p of pending.values()) p.reject(new Error(`${path} exited with ${code}`));
    });
  });
  return {
    proc,
    ready,
    call: <T>(cmd: string, args?: unknown) =>
      new Promise<T>((resolve, reject) => {
        if (exited) return reject(new Error(`${path} has exited`));
        const id = next++;
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        proc.send({ id, cmd, args });
      }),
    stop: async (graceMs = 15_000) => {
      if (exited) return;
      const id = next++;
      proc.send({ id, cmd: 'shutdown', args: {} }, () => {});
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
}
