// The one child-process helper: every process a test starts (Maestro's own CLI, the Temporal dev
// server, a rotation script) runs in its own process group and is registered here, so a test can
// SIGKILL it and killAllChildren() (call it in afterAll) stops whatever is left; a process 'exit'
// hook does the same as a last resort. Output is kept whole (output(), waitFor()) and by line.
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ChildHandle {
  name: string;
  pid: number;
  proc: ChildProcess;
  /** Every stdout/stderr line so far (newest last). */
  lines: string[];
  /** stdout and stderr as they came, partial last line included (a prompt has no newline). */
  output(): string;
  /** Resolves once output() matches re; rejects if the child exits first or the time runs out. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  readonly running: boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first line (already seen or future) matching re. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Signals the whole process group and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const children = new Set<ChildHandle>();
/** output() keeps this much of the newest text: enough for any assertion, bounded for long fault runs. */
const OUTPUT_LIMIT = 4 * 1024 * 1024;

function killGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

process.once('exit', () => {
  for (const c of children) if (c.running) killGroup(c.pid, 'SIGKILL');
});

export function spawnChild(
  name: string,
  command: string,
  args: string[],
  opts: { env: Record<string, string>; cwd?: string; stdin?: boolean },
): ChildHandle {
  const proc = spawn(command, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    // A clean environment: nothing from the test runner (MAESTRO_ENV=test, NODE_OPTIONS…) leaks in.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir(), TMPDIR: os.tmpdir(), ...opts.env },
    detached: true,
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let output = '';
  const waiters = new Set<{ re: RegExp; resolve: (line: string) => void }>();
  let running = true;
  const onLine = (line: string) => {
    lines.push(line);
    if (lines.length > 20_000) lines.splice(0, 10_000);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  };
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      output += chunk;
      if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT / 2);
      buffered += chunk;
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const part of parts) if (part) onLine(part);
    });
    stream.on('end', () => {
      if (buffered) onLine(buffered);
      buffered = '';
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      running = false;
      resolve({ code, signal });
    });
    proc.once('error', (error) => {
      running = false;
      onLine(`spawn error: ${error.message}`);
      resolve({ code: -1, signal: null });
    });
  });
  const handle = {
    name,
    pid: proc.pid!,
    proc,
    lines,
    get running() {
      return running;
    },
    output: () => output,
    waitFor: (re: RegExp, timeoutMs = 60_000) =>
      new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + timeoutMs;
        const tick = () => {
          if (re.test(output)) return resolve();
          if (!running)
            return reject(new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before ${re}:\n${output.slice(-4000)}`));
          if (Date.now() > deadline) return reject(new Error(`${name}: timed out waiting for ${re}:\n${output.slice(-4000)}`));
          setTimeout(tick, 50);
        };
        tick();
      }),
    exited,
    waitForLine(re: RegExp, timeoutMs = 60_000) {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const waiter = { re, resolve: (line: string) => (clearTimeout(timer), resolve(line)) };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms; last lines:\n${lines.slice(-15).join('\n')}`));
        }, timeoutMs);
        waiters.add(waiter);
        void exited.then(({ code, signal }) => {
          if (!waiters.has(waiter)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          reject(
            new Error(
              `${name} exited (code ${code}, signal ${signal}) before a line matching ${re}; last lines:\n${lines.slice(-15).join('\n')}`,
            ),
          );
        });
      });
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (running) killGroup(proc.pid!, signal);
      await exited;
      children.delete(handle);
    },
  };
  children.add(handle);
  return handle;
}

/** Kills every child still running (SIGKILL, whole process group) and waits for them. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => c.kill('SIGKILL')));
}

/** `node --import tsx src/cli/main.ts <command>`, exactly what `npm start` / `npm run worker` run. */
export function spawnMaestro(
  command: 'api' | 'worker',
  env: Record<string, string>,
  name: string = command,
  compiled?: string,
): ChildHandle {
  return runMaestro([command], env, { name, compiled });
}

/**
 * The real `maestro` command with arguments, as a user runs it (`--import tsx`: one process, so a
 * signal reaches Maestro itself, not an npx wrapper).
 */
export function runMaestro(
  args: string[],
  env: Record<string, string>,
  opts: { stdin?: boolean; name?: string; compiled?: string } = {},
): ChildHandle {
  // compiled: the path of a built dist/src/cli/main.js, run as `npm start` runs it in production.
  const entry = opts.compiled ? [opts.compiled] : ['--import', 'tsx', 'src/cli/main.ts'];
  return spawnChild(opts.name ?? `maestro ${args.join(' ')}`, process.execPath, [...entry, ...args], { env, stdin: opts.stdin });
}

/** Waits until a spawned worker has reconciled and polls its task queue. */
export const workerReady = (child: ChildHandle, timeoutMs = 90_000) => child.waitForLine(/worker polling/, timeoutMs);
/** Waits until a spawned API listens. */
export const apiReady = (child: ChildHandle, timeoutMs = 90_000) => child.waitForLine(/API listening/, timeoutMs);
