// A build never deletes what it did not write, never ships an inconsistent PKI, serialises
// concurrent builds of one output directory, and survives a closed stderr.

import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { parseDocument } from 'yaml';
import { main } from '../../src/cli/main.js';
import { repoRoot } from '../helpers/catalogue.js';
import { staticChecks } from '../../src/verify/static.js';

const work = mkdtempSync(join(tmpdir(), 'edgeimg-safety-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const catalogue = join(repoRoot, 'catalogue');
const cli = join(repoRoot, 'test', 'helpers', 'cli.ts');

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

function listing(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : [];
}

/** Every file under dir with its sha256, to prove a failed build changed nothing. */
function snapshot(dir: string): string[] {
  return listing(dir)
    .filter((p) => statSync(join(dir, p)).isFile())
    .map((p) => `${p}:${createHash('sha256').update(readFileSync(join(dir, p))).digest('hex')}`);
}

describe('output ownership', () => {
  it('refuses to replace a directory that is not edgeimg output, names it, exits 1 and changes nothing', async () => {
    const out = join(work, 'own1');
    mkdirSync(join(out, 'store-0412'), { recursive: true });
    writeFileSync(join(out, 'store-0412', 'notes.txt'), 'precious');
    const r = await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', out, '--secrets', join(work, 's1'), '--json']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${join(out, 'store-0412')} exists and is not edgeimg output`);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, error: 'output' });
    expect(readFileSync(join(out, 'store-0412', 'notes.txt'), 'utf8')).toBe('precious');
    expect(listing(out)).toEqual(['store-0412', 'store-0412/notes.txt']);
  });

  it('refuses edgeimg output of another site (a copied tree)', async () => {
    const out = join(work, 'own2');
    const secrets = join(work, 's2');
    expect((await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', out, '--secrets', secrets])).code).toBe(0);
    await execa('cp', ['-r', join(out, 'store-0007'), join(out, 'store-0412')]);
    const r = await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', out, '--secrets', secrets]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/holds edgeimg output for site "store-0007", not store-0412/);
  });

  it('replaces its own output for the same site', async () => {
    const out = join(work, 'own3');
    const secrets = join(work, 's3');
    for (let i = 0; i < 2; i++) expect((await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', out, '--secrets', secrets])).code).toBe(0);
    expect(existsSync(join(out, '.edgeimg.lock'))).toBe(false);
  });

  it('refuses --out equal to, containing or inside --secrets or --catalogue, and keeps the secrets', async () => {
    const s = join(work, 'same');
    for (let i = 0; i < 2; i++) {
      const r = await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', s, '--secrets', s]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/--out .* is the same directory as --secrets/);
    }
    expect(existsSync(s)).toBe(false);
    expect((await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', repoRoot, '--secrets', join(work, 's4')])).err).toMatch(/--out .* contains --catalogue/);
    expect((await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', join(catalogue, 'out'), '--secrets', join(work, 's4')])).err).toMatch(/--out .* is inside --catalogue/);
  });
});

describe('PKI consistency at load', () => {
  async function tampered(mutate: (doc: ReturnType<typeof parseDocument>) => void, name: string): Promise<{ r: Awaited<ReturnType<typeof run>>; out: string; before: string[] }> {
    const out = join(work, `pki-${name}`);
    const secrets = join(work, `pki-s-${name}`);
    expect((await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', out, '--secrets', secrets])).code).toBe(0);
    const file = join(secrets, 'store-0412', 'secrets.yaml');
    const doc = parseDocument(readFileSync(file, 'utf8'));
    mutate(doc);
    writeFileSync(file, doc.toString());
    chmodSync(file, 0o600);
    const before = snapshot(out);
    const r = await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', out, '--secrets', secrets]);
    return { r, out, before };
  }

  it('swapped CA keys: exit 3 naming the field, nothing rendered', async () => {
    const { r, out, before } = await tampered((doc) => {
      const k8s = doc.getIn(['certs', 'k8s', 'key']);
      doc.setIn(['certs', 'k8s', 'key'], doc.getIn(['certs', 'etcd', 'key']));
      doc.setIn(['certs', 'etcd', 'key'], k8s);
    }, 'swap');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/certs\.k8s: certificate does not match its private key/);
    expect(r.err).toMatch(/certs\.etcd: certificate does not match its private key/);
    expect(r.err).not.toMatch(/PRIVATE KEY|BEGIN/);
    expect(snapshot(out)).toEqual(before);
  });

  it('an EC key where the OS CA needs Ed25519: exit 3', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const { r } = await tampered((doc) => doc.setIn(['certs', 'os', 'key'], Buffer.from(ec).toString('base64')), 'ec');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/certs\.os: certificate does not match its private key/);
  });
});

describe('concurrency and pipes', () => {
  it('serialises three concurrent builds of one output directory; all succeed', async () => {
    const out = join(work, 'conc');
    const secrets = join(work, 'conc-s');
    expect((await run(['build', '--all', '--catalogue', catalogue, '--out', out, '--secrets', secrets])).code).toBe(0);
    const runs = await Promise.all(
      // --force: each really rebuilds and swaps (an incremental build would keep every site)
      [0, 1, 2].map(() => execa('node', ['--import', 'tsx', cli, 'build', '--all', '--force', '--catalogue', catalogue, '--out', out, '--secrets', secrets], { cwd: repoRoot, reject: false, timeout: 120_000 })),
    );
    for (const p of runs) expect(p.exitCode, p.stderr).toBe(0);
    expect(runs.some((p) => /another build \(pid \d+\) holds .*; waiting/.test(p.stderr))).toBe(true);
    for (const site of ['store-0412', 'store-0007', 'plant-0031', 'lab-0001']) {
      expect((await staticChecks(join(out, site))).results.filter((c) => !c.ok)).toEqual([]);
    }
    expect(readdirSync(out).filter((n) => n !== '.edgeimg-state').sort()).toEqual(['lab-0001', 'plant-0031', 'store-0007', 'store-0412']);
  }, 300_000);

  it('takes over a lock left by a build that died', async () => {
    const out = join(work, 'stale');
    mkdirSync(out, { recursive: true });
    const dead = await execa('node', ['-e', 'process.stdout.write(String(process.pid))']);
    writeFileSync(join(out, '.edgeimg.lock'), `${dead.stdout} ${(await import('node:os')).hostname()}\n`);
    const r = await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', out, '--secrets', join(work, 'stale-s')]);
    expect(r.code, r.err).toBe(0);
    expect(existsSync(join(out, '.edgeimg.lock'))).toBe(false);
  });

  it('a closed stderr never leaves a site missing', async () => {
    const out = join(work, 'pipe');
    const secrets = join(work, 'pipe-s');
    expect((await run(['build', '--all', '--catalogue', catalogue, '--out', out, '--secrets', secrets])).code).toBe(0);
    const child = execa('node', ['--import', 'tsx', cli, 'build', '--all', '--force', '--catalogue', catalogue, '--out', out, '--secrets', secrets], { cwd: repoRoot, reject: false, stderr: 'pipe' });
    child.stderr!.destroy(); // the reader goes away: every later write to stderr fails with EPIPE
    const p = await child;
    expect(p.exitCode).toBe(0);
    for (const site of ['store-0412', 'store-0007', 'plant-0031', 'lab-0001']) {
      expect((await staticChecks(join(out, site))).results.filter((c) => !c.ok)).toEqual([]);
    }
  }, 120_000);
});

describe('what a failed build says it wrote', () => {
  it('does not claim "nothing was written" when it created site secrets', async () => {
    const { copyCatalogue } = await import('../helpers/catalogue.js');
    const copy = copyCatalogue();
    try {
      // a Kairos flavor the renderer refuses: resolve passes, rendering fails after secrets exist
      copy.edit('catalogue/sites/lab-0001.yaml', (t) => t.replace('flavor: ubuntu-24.04', 'flavor: rockylinux-9'));
      const secrets = join(work, 'wrote-s');
      const r = await run(['build', '--site', 'lab-0001', '--catalogue', copy.catalogue, '--out', join(work, 'wrote'), '--secrets', secrets, '--json']);
      expect(r.code).toBe(1);
      expect(r.err).not.toMatch(/nothing was written/);
      expect(r.err).toMatch(/the output directory is unchanged, but site secrets were created for lab-0001/);
      expect(JSON.parse(r.out)).toMatchObject({ ok: false, error: 'catalogue', wrote: expect.stringContaining('lab-0001') });
      expect(existsSync(join(secrets, 'lab-0001', 'secrets.yaml'))).toBe(true);
    } finally {
      copy.cleanup();
    }
  });
});

describe('environment failures exit 3 with the path', () => {
  it('ENOTDIR: --out under a regular file', async () => {
    const file = join(work, 'a-file');
    writeFileSync(file, 'x');
    const r = await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', join(file, 'out'), '--secrets', join(work, 'nd-s')]);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`${join(file, 'out')}: a part of the path is a file, not a directory (ENOTDIR)`);
    expect(r.err).not.toMatch(/internal error|\n\s+at /);
  });

  it('a FIFO where the secrets file belongs fails at once instead of hanging', async () => {
    const secrets = join(work, 'fifo-s');
    mkdirSync(join(secrets, 'store-0007'), { recursive: true, mode: 0o700 });
    await execa('mkfifo', ['-m', '600', join(secrets, 'store-0007', 'secrets.yaml')]);
    const r = await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', join(work, 'fifo-out'), '--secrets', secrets]);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/secrets\.yaml: is not a regular file/);
  });

  it('EACCES: an output directory the user cannot write (run as nobody)', async () => {
    if (process.getuid?.() !== 0) return; // needs root to drop to another user
    const ro = join(work, 'ro');
    mkdirSync(ro, { mode: 0o555 });
    chmodSync(work, 0o755);
    const p = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'node', '--import', 'tsx', cli, 'build', '--site', 'store-0007', '--catalogue', catalogue, '--out', join(ro, 'out'), '--secrets', join(ro, 's')], { cwd: repoRoot, reject: false });
    expect(p.exitCode, p.stderr).toBe(3);
    expect(p.stderr).toContain(`${join(ro, 'out')}: permission denied (EACCES)`);
  });
});

describe('usability', () => {
  it('an unknown site names the nearest known one, and the known ones', async () => {
    const r = await run(['build', '--site', 'store-412', '--catalogue', catalogue, '--out', join(work, 'u1'), '--secrets', join(work, 'u1s')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown site: store-412 \(did you mean store-0412\?\); the catalogue has lab-0001, plant-0031, store-0007, store-0412/);
  });

  it('verify of a site that was never built says so', async () => {
    const r = await run(['verify', '--site', 'store-0007', '--out', join(work, 'never'), '--catalogue', catalogue]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/site store-0007 was never built into .*never.*; run edgeimg build --site store-0007 first/);
  });

  it('says "1 site, 1 node"', async () => {
    const r = await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', join(work, 'u2'), '--secrets', join(work, 'u2s')]);
    expect(r.err).toMatch(/built 1 site, 1 node into/);
    expect(r.err).toMatch(/store-0007: 1 node built/);
  });

  it('a rebuild keeps the previous verify logs and says where they are', async () => {
    const out = join(work, 'u3');
    const s = join(work, 'u3s');
    expect((await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', out, '--secrets', s])).code).toBe(0);
    mkdirSync(join(out, 'store-0007', 'verify'));
    writeFileSync(join(out, 'store-0007', 'verify', 'cp-1-seed-iso.log'), 'serial log');
    const r = await run(['build', '--force', '--site', 'store-0007', '--catalogue', catalogue, '--out', out, '--secrets', s]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/store-0007: kept the previous verify logs in .*store-0007\/verify/);
    expect(readFileSync(join(out, 'store-0007', 'verify', 'cp-1-seed-iso.log'), 'utf8')).toBe('serial log');
    expect((await run(['verify', '--site', 'store-0007', '--out', out, '--catalogue', catalogue, '--secrets', s])).code).toBe(0);
  });

  it('--require-secrets (or EDGEIMG_REQUIRE_SECRETS=1) refuses to mint a new PKI', async () => {
    const s = join(work, 'u4s');
    const r = await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', join(work, 'u4'), '--secrets', s, '--require-secrets']);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/site secrets for store-0007 are missing .* refusing to mint a new PKI/);
    expect(existsSync(join(s, 'store-0007'))).toBe(false);
    const p = await execa('node', ['--import', 'tsx', cli, 'build', '--site', 'store-0007', '--catalogue', catalogue, '--out', join(work, 'u4'), '--secrets', s], { cwd: repoRoot, reject: false, env: { EDGEIMG_REQUIRE_SECRETS: '1' } });
    expect(p.exitCode).toBe(3);
    expect(existsSync(join(s, 'store-0007'))).toBe(false);
    // with the secrets in place it builds
    expect((await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', join(work, 'u4'), '--secrets', s])).code).toBe(0);
    expect((await run(['build', '--site', 'store-0007', '--catalogue', catalogue, '--out', join(work, 'u4'), '--secrets', s, '--require-secrets'])).code).toBe(0);
  });

  it('every subcommand answers --help and -h with exit 0', async () => {
    for (const cmd of ['validate', 'build', 'verify']) {
      for (const flag of ['--help', '-h']) {
        const r = await run([cmd, flag]);
        expect(r.code).toBe(0);
        expect(r.out).toMatch(new RegExp(`^edgeimg ${cmd}: `));
      }
    }
  });
});
