// `npm run build`, last step: the admin page's browser files (src/admin/assets.ts names them),
// hashed into dist/admin-assets/ with a manifest the compiled page reads. Also checks the page's
// JavaScript budget (issue 31: at most 150 KB gzipped).
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { readSourceAssets } from '../src/admin/assets.js';

const BUDGET_BYTES = 150 * 1024;
const out = new URL('../dist/admin-assets/', import.meta.url);
mkdirSync(out, { recursive: true });
const manifest: Record<string, string> = {};
let gzippedJs = 0;
for (const [name, asset] of readSourceAssets()) {
  writeFileSync(new URL(asset.file, out), asset.body);
  manifest[name] = asset.file;
  if (name.endsWith('.js')) gzippedJs += gzipSync(asset.body).length;
}
writeFileSync(new URL('manifest.json', out), `${JSON.stringify(manifest, null, 2)}\n`);
process.stdout.write(
  `dist/admin-assets: ${Object.keys(manifest).length} files, ${(gzippedJs / 1024).toFixed(1)} KiB of gzipped JavaScript\n`,
);
if (gzippedJs > BUDGET_BYTES) {
  process.stderr.write(`the admin page's JavaScript is over its budget of ${BUDGET_BYTES / 1024} KiB gzipped\n`);
  process.exit(1);
}
