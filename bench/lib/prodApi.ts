// The production build as users run it: `node dist/src/cli/main.js api` (npm run build), NODE_ENV
// production, JSON log lines on stdout (here a file, as a log collector's pipe would take them),
// against the bench's PostgreSQL and Temporal. Nothing bench-specific runs inside it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ProdApi {
  url: string;
  pid: number;
  logFile: string;
  logBytes(): number;
  stop(): Promise<void>;
}

/** `npm run build` in `root` (tsc + the workflow bundle); throws with its output on failure. */
export function buildProduction(root: string): void {
  const r = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
}

export async function startProdApi(
  root: string,
  env: Record<string, string>,
  opts: { timeoutMs?: number; /** e.g. --cpu-prof */ nodeArgs?: string[] } = {},
): Promise<ProdApi> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'maestro-bench-prod-'));
  const logFile = path.join(dir, 'stdout.log');
  const fd = openSync(logFile, 'w');
  const proc: ChildProcess = spawn(process.execPath, [...(opts.nodeArgs ?? []), path.join(root, 'dist/src/cli/main.js'), 'api'], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', fd, 'inherit'],
  });
  closeSync(fd);
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while (!url) {
    if (proc.exitCode !== null) throw new Error(`maestro api exited with ${proc.exitCode}:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`maestro api did not listen within ${timeoutMs} ms:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    url = /Maestro API listening on (http:\/\/\S+)/.exec(readFileSync(logFile, 'utf8'))?.[1];
    if (!url) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    pid: proc.pid!,
    logFile,
    logBytes: () => statSync(logFile).size,
    stop: async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
