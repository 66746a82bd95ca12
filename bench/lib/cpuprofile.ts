// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by origin (Maestro's
// src/, each node_modules package, node internals, GC/idle).
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function origin(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const src = url.indexOf('/src/');
  if (src >= 0)
    return `maestro ${url
      .slice(src + 1)
      .split('/')
      .slice(0, 2)
      .join('/')}`;
  const bench = url.indexOf('/bench/');
  if (bench >= 0) return 'bench';
  return url;
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  byOrigin: { origin: string; ms: number; pct: number }[];
  topFunctions: { fn: string; where: string; ms: number; pct: number }[];
}

/**
 * `windows`: only the samples taken inside these spans (µs on the monotonic clock V8 stamps
 * samples with, as process.hrtime in any process of this machine), so one whole-run profile can be
 * cut into the cases that ran in it.
 */
export function summarizeCpuProfile(file: string, top = 20, windows?: { from: number; to: number }[]): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    at += profile.timeDeltas[i] ?? 0;
    if (windows && !windows.some((w) => at >= w.from && at < w.to)) continue;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = windows ? windows.reduce((sum, w) => sum + (w.to - w.from), 0) : profile.endTime - profile.startTime;
  let idleUs = 0;
  const origins = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; us: number }>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)' || functionName === '(program)') {
      if (functionName === '(idle)') idleUs += us;
    }
    const o = origin(url, functionName || '(anonymous)');
    origins.set(o, (origins.get(o) ?? 0) + us);
    const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/');
    const key = `${functionName}@${url}:${lineNumber}`;
    const entry = fns.get(key) ?? { fn: functionName || '(anonymous)', where: short ? `${short}:${lineNumber + 1}` : '', us: 0 };
    entry.us += us;
    fns.set(key, entry);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => Number(((100 * us) / busyUs).toFixed(1));
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    byOrigin: [...origins]
      .filter(([o]) => o !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([o, us]) => ({ origin: o, ms: Math.round(us / 1000), pct: pct(us) })),
    topFunctions: [...fns.values()]
      .filter((f) => f.fn !== '(idle)')
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ fn: f.fn, where: f.where, ms: Math.round(f.us / 1000), pct: pct(f.us) })),
  };
}
