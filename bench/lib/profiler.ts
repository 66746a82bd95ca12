// The V8 CPU profiler that `node --cpu-prof` uses, started and stopped on command through
// node:inspector, so a profile covers only the measured window (not startup or webpack bundling).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

let session: Session | undefined;

export async function profileStart(): Promise<boolean> {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return true;
}

export async function profileStop({ file }: { file: string }): Promise<string> {
  if (!session) throw new Error('profiler not started');
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(file, JSON.stringify(profile));
  session.disconnect();
  session = undefined;
  return file;
}
