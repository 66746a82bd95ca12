#!/usr/bin/env node
// `maestro` on the PATH (npm link, npx maestro): the compiled CLI from `npm run build`; in a
// development checkout that has not been built, the TypeScript sources through tsx.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
