// CPU seconds of this process's child processes (the Temporal server, PostgreSQL) from /proc,
// children of theirs that already exited included (cutime/cstime).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';

const TICK = 100; // USER_HZ on Linux

function stat(pid: number): { ppid: number; comm: string; cpuSec: number; rssMb: number } | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = raw.lastIndexOf(')');
    const comm = raw.slice(raw.indexOf('(') + 1, close);
    const f = raw.slice(close + 2).split(' ');
    // fields after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14) ... rss(21)
    const cpu = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    return { ppid: Number(f[1]), comm, cpuSec: cpu / TICK, rssMb: (Number(f[21]) * 4096) / 1e6 };
  } catch {
    return undefined;
  }
}

/** The pid of this process's direct child whose command name starts with `prefix`, if one runs. */
export function childPid(prefix: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = stat(Number(d));
    if (s && s.ppid === process.pid && s.comm.startsWith(prefix)) return Number(d);
  }
  return undefined;
}

/** CPU seconds and RSS per direct child command name (postgres counts its whole tree through cutime and live backends). */
export function childrenUsage(): Record<string, { cpuSec: number; rssMb: number }> {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => ({ pid: Number(d), s: stat(Number(d)) }))
    .filter((p): p is { pid: number; s: NonNullable<ReturnType<typeof stat>> } => p.s !== undefined);
  const byParent = new Map<number, typeof all>();
  for (const p of all) byParent.set(p.s.ppid, [...(byParent.get(p.s.ppid) ?? []), p]);
  const out: Record<string, { cpuSec: number; rssMb: number }> = {};
  const tree = (pid: number): { cpuSec: number; rssMb: number } => {
    const self = all.find((p) => p.pid === pid)!.s;
    let cpuSec = self.cpuSec;
    let rssMb = self.rssMb;
    for (const c of byParent.get(pid) ?? []) {
      const t = tree(c.pid);
      cpuSec += t.cpuSec;
      rssMb += t.rssMb;
    }
    return { cpuSec, rssMb };
  };
  for (const c of byParent.get(process.pid) ?? []) {
    const name = c.s.comm.startsWith('temporal') ? c.s.comm : c.s.comm.includes('postgres') ? 'postgres' : c.s.comm;
    const t = tree(c.pid);
    const prev = out[name] ?? { cpuSec: 0, rssMb: 0 };
    out[name] = { cpuSec: prev.cpuSec + t.cpuSec, rssMb: prev.rssMb + t.rssMb };
  }
  return out;
}

export const machine = () => ({ cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '?', node: process.version, loadavg: os.loadavg() });

/** CPU seconds (all threads) of `pid` and, with `tree`, of its live descendants, from /proc. */
export function processCpuSec(pid: number, opts: { tree?: boolean } = {}): number {
  const self = stat(pid);
  if (!self) return 0;
  if (!opts.tree) return self.cpuSec;
  const kids = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => stat(p)?.ppid === pid);
  return self.cpuSec + kids.reduce((sum, k) => sum + processCpuSec(k, { tree: true }), 0);
}

/** Pins every thread of `pid` (and with `tree` its descendants) to the given CPUs; later threads inherit it. */
export function pinToCpus(pid: number, cpus: string, opts: { tree?: boolean } = {}): void {
  // -a walks the threads one by one: one that exits meanwhile fails the walk, so try again.
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
      break;
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
  if (!opts.tree) return;
  for (const d of readdirSync('/proc')) {
    if (/^\d+$/.test(d) && stat(Number(d))?.ppid === pid) pinToCpus(Number(d), cpus, opts);
  }
}
