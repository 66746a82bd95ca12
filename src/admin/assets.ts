// The admin page's browser files: htmx and uPlot from node_modules (pinned in package.json), and
// the page's own script and style from src/admin/static. Each is served under a name carrying a
// hash of its content (cached for a year, never stale). `npm run build` writes them to
// dist/admin-assets/ with a manifest (scripts/buildAdminAssets.ts); from source (tsx, tests) they
// are read and hashed at start. Nothing is fetched from anywhere at run time.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The page's names for its files, and where each comes from in the source tree. */
const SOURCES = {
  'htmx.js': { module: 'htmx.org/dist/htmx.min.js' },
  'uplot.js': { module: 'uplot/dist/uPlot.iife.min.js' },
  'uplot.css': { module: 'uplot/dist/uPlot.min.css' },
  'admin.js': { file: 'static/admin.js' },
  'admin.css': { file: 'static/admin.css' },
} as const;
export type AssetName = keyof typeof SOURCES;
export const ASSET_NAMES = Object.keys(SOURCES) as AssetName[];

export interface Asset {
  /** The hashed file name the page links to, e.g. `htmx.3f2a9c1b.js`. */
  file: string;
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** `stem.<hash>.ext`: the first 10 hex characters of the content's SHA-256. */
export function hashedName(name: string, body: Buffer): string {
  const dot = name.lastIndexOf('.');
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 10);
  return `${name.slice(0, dot)}.${hash}${name.slice(dot)}`;
}

const typeOf = (name: string) => TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream';

/** Each asset read from the source tree (node_modules and src/admin/static). */
export function readSourceAssets(): Map<AssetName, Asset> {
  const require = createRequire(import.meta.url);
  const out = new Map<AssetName, Asset>();
  for (const name of ASSET_NAMES) {
    const source: { module?: string; file?: string } = SOURCES[name];
    const path = source.module ? require.resolve(source.module) : fileURLToPath(new URL(source.file ?? '', import.meta.url));
    const body = readFileSync(path);
    out.set(name, { file: hashedName(name, body), body, type: typeOf(name) });
  }
  return out;
}

/** Where `npm run build` puts the hashed files, relative to the compiled dist/src/admin/assets.js. */
export const BUILT_ASSETS_DIR = new URL('../../admin-assets/', import.meta.url);

/** The built files when there are any (production), else the source files hashed now. */
export function loadAssets(): Map<AssetName, Asset> {
  const manifestUrl = new URL('manifest.json', BUILT_ASSETS_DIR);
  if (!existsSync(manifestUrl)) return readSourceAssets();
  const manifest = JSON.parse(readFileSync(manifestUrl, 'utf8')) as Record<AssetName, string>;
  const out = new Map<AssetName, Asset>();
  for (const name of ASSET_NAMES) {
    const file = manifest[name];
    out.set(name, { file, body: readFileSync(new URL(file, BUILT_ASSETS_DIR)), type: typeOf(name) });
  }
  return out;
}
