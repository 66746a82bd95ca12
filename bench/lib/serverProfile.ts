// A CPU profile of the Temporal dev server (a Go binary, stripped) over a bench window: `perf
// record -g` samples the process's stacks (Go keeps frame pointers), and `go tool addr2line` names
// the addresses from the binary's own pclntab, which stripping keeps. Self and inclusive share by
// function and by package — where the server's part of a refresh goes. Needs `perf` and `go` on
// PATH (both are in Debian); without them the caller is told why and the bench runs on.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';

export interface ServerProfileSummary {
  samples: number;
  /** Share of samples whose stack passes through each part of the server (parts overlap). */
  byPart: { part: string; pct: number }[];
  /** Share of samples in each package (self: the leaf frame's; inclusive: anywhere on the stack). */
  byPackage: { pkg: string; selfPct: number; inclusivePct: number }[];
  topSelf: { fn: string; pct: number }[];
  topInclusive: { fn: string; pct: number }[];
}

/** The parts of a Temporal server a refresh's work passes through, by the functions that mark them. */
const PARTS: [part: string, marker: RegExp][] = [
  ['persistence (all stores)', /^go\.temporal\.io\/server\/common\/persistence\//],
  ['  SQLite itself (modernc.org/sqlite, Go-translated C)', /^modernc\.org\/(sqlite|libc)/],
  ['  visibility store (search attributes, listing)', /^go\.temporal\.io\/server\/common\/persistence\/visibility/],
  [
    'garbage collection and allocation',
    /^runtime\.(gcBgMarkWorker|gcDrain|gcAssist|markroot|scanobject|scanObject|mallocgc|newobject|growslice|makeslice|bgsweep|sweepone)/,
  ],
  ['gRPC transport and protobuf', /^google\.golang\.org\/(grpc\/internal\/transport|protobuf\/)/],
  ['kernel (syscalls, network)', /^\(kernel\)$/],
  ['RPC RecordWorkflowTaskStarted (history)', /RecordWorkflowTaskStarted$/],
  ['RPC RespondWorkflowTaskCompleted', /RespondWorkflowTaskCompleted$/],
  ['RPC RecordActivityTaskStarted (history)', /RecordActivityTaskStarted$/],
  ['RPC RecordActivityTaskHeartbeat', /RecordActivityTaskHeartbeat$/],
  ['RPC RespondActivityTaskCompleted', /RespondActivityTaskCompleted$/],
  ['RPC PollWorkflowTaskQueue + PollActivityTaskQueue', /Poll(Workflow|Activity)TaskQueue$/],
  ['RPC AddWorkflowTask + AddActivityTask (matching)', /Add(Workflow|Activity)Task$/],
  ['RPC ListWorkflowExecutions (reconcile)', /ListWorkflowExecutions$/],
  ['timer queue (timers firing)', /[Tt]imerQueue/],
];

/** Why a server profile cannot be taken here, or undefined when it can. */
export function serverProfileUnavailable(): string | undefined {
  for (const tool of ['perf', 'go', 'readelf'])
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not on PATH`;
  return undefined;
}

/** Starts sampling `pid` (99 Hz × stacks); stop() ends it and summarises. */
export function startServerProfile(pid: number, file: string): { stop: () => Promise<ServerProfileSummary> } {
  const binary = readlinkExe(pid);
  const perf: ChildProcess = spawn('perf', ['record', '-F', '99', '-g', '-p', String(pid), '-o', file], { stdio: 'ignore' });
  return {
    stop: async () => {
      const exited = new Promise((resolve) => perf.once('exit', resolve));
      perf.kill('SIGINT');
      await exited;
      return summarizePerf(file, binary);
    },
  };
}

function readlinkExe(pid: number): string {
  return execFileSync('readlink', ['-f', `/proc/${pid}/exe`], { encoding: 'utf8' }).trim();
}

/** Stacks (leaf first) of every sample in `file`, addresses named from `binary`. */
export function summarizePerf(file: string, binaryPath: string): ServerProfileSummary {
  const binary = realpathSync(binaryPath); // perf names the binary by its real, absolute path
  // perf prints a frame in the binary as its file offset: the text segment's bias makes it an address.
  const bias = textBias(binary);
  const script = execFileSync('perf', ['script', '-i', file, '-F', 'ip,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const stacks: string[][] = [];
  let current: string[] = [];
  for (const line of script.split('\n')) {
    const m = /^\s*([0-9a-f]+) \((.*)\)\s*$/.exec(line);
    if (!m) {
      if (current.length) stacks.push(current);
      current = [];
    } else current.push(m[2] === binary ? (BigInt(`0x${m[1]}`) + bias).toString(16) : m[2]!.includes('kernel') ? '(kernel)' : `(${m[2]})`);
  }
  if (current.length) stacks.push(current);
  const names = resolve(
    binary,
    [...new Set(stacks.flat())].filter((ip) => !ip.startsWith('(')),
  );
  const fnOf = (ip: string) => (ip.startsWith('(') ? ip : (names.get(ip) ?? '(unknown)'));
  const fnStacks = stacks.map((stack) => stack.map(fnOf));
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const pkgSelf = new Map<string, number>();
  const pkgIncl = new Map<string, number>();
  const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const fns of fnStacks) {
    add(self, fns[0]!);
    add(pkgSelf, packageOf(fns[0]!));
    for (const fn of new Set(fns)) add(incl, fn);
    for (const pkg of new Set(fns.map(packageOf))) add(pkgIncl, pkg);
  }
  const pct = (n: number) => Math.round((1000 * n) / Math.max(1, stacks.length)) / 10;
  const top = (m: Map<string, number>, k: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([fn, n]) => ({ fn, pct: pct(n) }));
  return {
    samples: stacks.length,
    byPart: PARTS.map(([part, marker]) => ({ part, pct: pct(fnStacks.filter((fns) => fns.some((fn) => marker.test(fn))).length) })),
    byPackage: [...pkgIncl.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([pkg, n]) => ({ pkg, selfPct: pct(pkgSelf.get(pkg) ?? 0), inclusivePct: pct(n) })),
    topSelf: top(self, 25),
    topInclusive: top(incl, 40),
  };
}

/** vaddr − file offset of the executable LOAD segment (readelf -l). */
function textBias(binary: string): bigint {
  const out = execFileSync('readelf', ['-lW', binary], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'LOAD' && line.includes(' R E ')) return BigInt(f[2]!) - BigInt(f[1]!);
  }
  throw new Error(`no executable LOAD segment in ${binary}`);
}

/** hex address → function name, through `go tool addr2line` (one process for all of them). */
function resolve(binary: string, ips: string[]): Map<string, string> {
  const out = execFileSync('go', ['tool', 'addr2line', binary], {
    input: ips.map((ip) => `0x${ip}`).join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  }).split('\n');
  const names = new Map<string, string>();
  // Two lines per address: the function, then file:line ("?" for an address outside the binary).
  ips.forEach((ip, i) => {
    const fn = out[2 * i];
    if (fn && fn !== '?') names.set(ip, fn);
  });
  return names;
}

/** A Go function's package: the path up to the first dot after the last slash (runtime → runtime). */
function packageOf(fn: string): string {
  if (fn.startsWith('(')) return fn;
  const slash = fn.lastIndexOf('/');
  const dot = fn.indexOf('.', slash + 1);
  const pkg = dot < 0 ? fn : fn.slice(0, dot);
  // Group the server's many packages one level under service/ or common/ (history, matching, persistence…).
  const m = /^(go\.temporal\.io\/server\/(?:service|common)\/[^/]+)/.exec(pkg);
  return m ? m[1]! : pkg;
}

/** For a quick look at a recorded file: `npx tsx bench/lib/serverProfile.ts perf.data /path/to/temporal`. */
if (process.argv[1]?.endsWith('serverProfile.ts') && process.argv[3]) {
  console.log(JSON.stringify(summarizePerf(process.argv[2]!, process.argv[3]), null, 2));
}
