// `npm run build`, second step: the workflow bundle the compiled worker loads (dist/workflow-bundle.js),
// made from the compiled workflow code so it is exactly what runs in production.
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';

const { code } = await bundleWorkflowCode({
  workflowsPath: new URL('../dist/src/workflows/index.js', import.meta.url).pathname,
  logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
});
writeFileSync(new URL('../dist/workflow-bundle.js', import.meta.url), code);
process.stdout.write(`dist/workflow-bundle.js: ${(code.length / 1024).toFixed(0)} KiB\n`);
