// `verify` reads only what a manifest may name: relative, normalised paths inside the site
// directory, to regular files reached through no symlink; the manifest itself is a regular
// file of at most 1 MiB. A hostile manifest (../../../../dev/zero, a FIFO) fails at once
// instead of reading without end.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { staticChecks, type CheckResult } from '../../src/verify/static.js';
import { MAX_MANIFEST_BYTES } from '../../src/manifest/manifest.js';

const posix = process.platform !== 'win32';
const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

let work: string;
let site: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'edgeimg-verify-confined-'));
  site = join(work, 'out', 'store-0412');
  mkdirSync(join(site, 'nodes', 'cp-1'), { recursive: true });
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

interface Entry {
  path: string;
  sha256?: string;
  bytes?: number;
}

function writeManifest(artifacts: Entry[], extra: Record<string, unknown> = {}): void {
  const m = {
    schemaVersion: 1,
    site: 'store-0412',
    os: 'kairos',
    osVersion: 'v3.5.1',
    generator: { name: 'edgeimg', version: '0.1.0' },
    inputDigest: `sha256:${'0'.repeat(64)}`,
    artifacts: artifacts.map((a) => ({ kind: 'user-data', node: 'cp-1', secret: true, sha256: a.sha256 ?? '0'.repeat(64), bytes: a.bytes ?? 0, path: a.path })),
    nodes: [],
    ...extra,
  };
  writeFileSync(join(site, 'manifest.json'), JSON.stringify(m, null, 2));
}

function artifactResults(results: CheckResult[]): CheckResult[] {
  return results.filter((r) => r.check === 'artifact');
}

function expectFailure(results: CheckResult[], pattern: RegExp): void {
  const hit = results.find((r) => !r.ok && pattern.test(r.message));
  expect(hit, `no failed check ${pattern}; got:\n${results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.check}: ${r.message}`).join('\n')}`).toBeDefined();
}

describe.runIf(posix)('verify reads only confined manifest artifacts', () => {
  it('refuses ../../../../dev/zero at once, without reading it', async () => {
    writeManifest([{ path: '../../../../../../../../dev/zero', bytes: 10 }]);
    const { results } = await staticChecks(site);
    expectFailure(artifactResults(results), /^"\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/dev\/zero": path leaves the site directory \(\.\.\)$/);
  }, 20_000);

  it('refuses a path leaving the site directory even to a matching regular file', async () => {
    const outside = join(work, 'planted');
    writeFileSync(outside, '#cloud-config\n');
    writeManifest([{ path: '../../planted', sha256: sha('#cloud-config\n'), bytes: 14 }]);
    const { results } = await staticChecks(site);
    const art = artifactResults(results);
    expect(art.filter((r) => r.ok)).toEqual([]);
    expectFailure(art, /path leaves the site directory/);
  });

  it('refuses absolute and non-normalised paths', async () => {
    writeFileSync(join(site, 'nodes', 'cp-1', 'user-data'), 'x');
    writeManifest([{ path: '/etc/hostname' }, { path: 'nodes/./cp-1/user-data', sha256: sha('x'), bytes: 1 }, { path: 'nodes//cp-1/user-data', sha256: sha('x'), bytes: 1 }, { path: '' }]);
    const art = artifactResults((await staticChecks(site)).results);
    expectFailure(art, /"\/etc\/hostname": path is absolute/);
    expectFailure(art, /"nodes\/\.\/cp-1\/user-data": path is not a normalised relative path/);
    expectFailure(art, /"nodes\/\/cp-1\/user-data": path is not a normalised relative path/);
    expectFailure(art, /"": path is empty/);
  });

  it('refuses an artifact that is a symlink, even to a file inside the site', async () => {
    writeFileSync(join(site, 'nodes', 'cp-1', 'meta-data'), 'x');
    symlinkSync('meta-data', join(site, 'nodes', 'cp-1', 'user-data'));
    writeManifest([{ path: 'nodes/cp-1/user-data', sha256: sha('x'), bytes: 1 }, { path: 'nodes/cp-1/meta-data', sha256: sha('x'), bytes: 1 }]);
    const art = artifactResults((await staticChecks(site)).results);
    expectFailure(art, /^nodes\/cp-1\/user-data: is, or lies under, a symbolic link/);
  });

  it('refuses an artifact under a symlinked directory', async () => {
    mkdirSync(join(work, 'elsewhere'));
    writeFileSync(join(work, 'elsewhere', 'user-data'), 'x');
    symlinkSync(join(work, 'elsewhere'), join(site, 'nodes', 'cp-2'));
    writeManifest([{ path: 'nodes/cp-2/user-data', sha256: sha('x'), bytes: 1 }]);
    const results = (await staticChecks(site)).results;
    expectFailure(artifactResults(results), /^nodes\/cp-2\/user-data: is, or lies under, a symbolic link/);
  });

  it('refuses an artifact that is a FIFO without blocking on it', async () => {
    execFileSync('mkfifo', [join(site, 'nodes', 'cp-1', 'user-data')]);
    writeManifest([{ path: 'nodes/cp-1/user-data', bytes: 1 }]);
    expectFailure(artifactResults((await staticChecks(site)).results), /^nodes\/cp-1\/user-data: is a FIFO \(named pipe\), not a regular file$/);
  }, 20_000);

  it('reports a symlink beside the artifacts that the manifest does not list', async () => {
    writeFileSync(join(site, 'nodes', 'cp-1', 'user-data'), 'x');
    symlinkSync('/etc/passwd', join(site, 'nodes', 'cp-1', 'extra'));
    writeManifest([{ path: 'nodes/cp-1/user-data', sha256: sha('x'), bytes: 1 }]);
    const art = artifactResults((await staticChecks(site)).results);
    expect(art.find((r) => r.ok)?.message).toBe('nodes/cp-1/user-data: 1 bytes, sha256 ok');
    expectFailure(art, /^nodes\/cp-1\/extra: not listed in the manifest$/);
  });

  it('refuses a manifest over the size limit', async () => {
    writeManifest([], { padding: 'x'.repeat(MAX_MANIFEST_BYTES) });
    const { manifest, results } = await staticChecks(site);
    expect(manifest).toBeUndefined();
    expectFailure(results, /^cannot read manifest: .*manifest\.json: is \d+ bytes, over the 1 MiB limit for manifest\.json$/);
  });

  it('refuses a manifest that is a FIFO or a symlink', async () => {
    execFileSync('mkfifo', [join(site, 'manifest.json')]);
    expectFailure((await staticChecks(site)).results, /^cannot read manifest: .*manifest\.json: is a FIFO \(named pipe\), not a regular file$/);
    rmSync(join(site, 'manifest.json'));
    writeManifest([]);
    execFileSync('mv', [join(site, 'manifest.json'), join(work, 'real.json')]);
    symlinkSync(join(work, 'real.json'), join(site, 'manifest.json'));
    expectFailure((await staticChecks(site)).results, /^cannot read manifest: .*manifest\.json: is a symbolic link; symlinks are not followed$/);
  }, 20_000);

  it('reports a malformed artifact entry instead of crashing', async () => {
    writeFileSync(join(site, 'manifest.json'), JSON.stringify({ schemaVersion: 1, artifacts: [null], nodes: [] }));
    expectFailure((await staticChecks(site)).results, /^cannot read manifest: .*artifacts\[0\] needs a string path and sha256 and an integer bytes$/);
  });
});

describe('verify --boot attaches only confined seeds', () => {
  it('refuses to boot a seed whose manifest path leaves the site directory, without starting QEMU', async () => {
    const { bootChecks } = await import('../../src/verify/boot.js');
    const manifest = {
      schemaVersion: 1 as const,
      site: 'store-0412',
      os: 'talos' as const,
      osVersion: 'v1.13.9',
      generator: { name: 'edgeimg', version: '0.1.0' },
      inputDigest: `sha256:${'0'.repeat(64)}`,
      artifacts: [
        { path: '../../../../dev/zero', kind: 'seed-iso' as const, node: 'cp-1', sha256: '0'.repeat(64), bytes: 1, secret: true },
        { path: 'nodes/cp-1/user-data', kind: 'user-data' as const, node: 'cp-1', sha256: '0'.repeat(64), bytes: 1, secret: true },
      ],
      nodes: [{ name: 'cp-1', hostname: 'store-0412-cp-1', role: 'controlplane' as const, arch: 'amd64' as const, firmware: 'uefi' as const, hardwareClass: 'x', address: '10.0.0.1' }],
    };
    const results = await bootChecks(site, manifest, { accel: 'tcg', timeoutMs: 5_000, imagesDir: join(work, 'no-images') });
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ ok: false, check: 'boot-cdrom' });
    expect(results[0]!.message).toMatch(/^not booted: "\.\.\/\.\.\/\.\.\/\.\.\/dev\/zero" path leaves the site directory/);
  });
});
