#!/usr/bin/env node
// `maestro` on the PATH (npm link, npx maestro): runs the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
