// .ci/run prints its one-line summary whether the tests pass or fail, and still exits non-zero
// when they fail. Run against stub commands (apt-get, npm, make, ...) in a scratch copy.

import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/catalogue.js';

const work = mkdtempSync(join(tmpdir(), 'edgeimg-ci-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function scratch(makeTest: string): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(work, 'repo-'));
  mkdirSync(join(dir, '.ci'));
  copyFileSync(join(repoRoot, '.ci', 'run'), join(dir, '.ci', 'run'));
  const bin = join(dir, 'stub-bin');
  mkdirSync(bin);
  const stub = (name: string, body: string): void => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  for (const n of ['apt-get', 'npm', 'touch']) stub(n, 'exit 0');
  stub('sudo', '"$@"');
  stub('node', 'echo v20.0.0-stub');
  stub('make', `if [ "$1" = test ]; then\n${makeTest}\nfi\nexit 0`);
  return { dir, env: { PATH: `${bin}:/usr/bin:/bin`, CI: 'true' } };
}

describe('.ci/run', () => {
  it('prints the summary and exits non-zero when tests fail', async () => {
    const { dir, env } = scratch(`echo " Test Files  1 failed | 3 passed (4)"; echo "      Tests  2 failed | 40 passed (42)"; exit 1`);
    const r = await execa('bash', [join(dir, '.ci', 'run')], { env, extendEnv: false, reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout.trim().split('\n').pop()).toBe('40 passed, 2 failed');
  });

  it('prints the summary and exits 0 when tests pass', async () => {
    const { dir, env } = scratch(`echo "      Tests  42 passed (42)"; exit 0`);
    const r = await execa('bash', [join(dir, '.ci', 'run')], { env, extendEnv: false, reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim().split('\n').pop()).toBe('42 passed, 0 failed');
  });

  it('says so when make test fails before vitest reports', async () => {
    const { dir, env } = scratch('echo "tsc: error"; exit 2');
    const r = await execa('bash', [join(dir, '.ci', 'run')], { env, extendEnv: false, reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stdout.trim().split('\n').pop()).toBe('0 passed, 0 failed (make test exited 2)');
  });
});
