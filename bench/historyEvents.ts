// History events per refresh cycle, counted in recorded workflow histories (test/workflows/histories/):
//   npx tsx bench/historyEvents.ts test/workflows/histories/*-continue-as-new-first-run.pb
// Prints, per file, the events between consecutive refreshCredential activities.
import { readFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { eventsPerCycle } from './lib/historyCycles.js';

const { temporal } = proto; // CommonJS package: no named ESM exports under tsx

for (const file of process.argv.slice(2)) {
  const events = temporal.api.history.v1.History.decode(readFileSync(file)).events ?? [];
  const gaps = eventsPerCycle(events);
  console.log(
    `${file.split('/').pop()}: ${events.length} events, ${gaps.length + (gaps.length ? 1 : 0)} refreshes, events per cycle ${gaps.join(', ') || '—'}`,
  );
}
