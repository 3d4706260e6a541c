import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/main.js';
import { copyCatalogue, repoRoot, type CatalogueCopy } from '../helpers/catalogue.js';
import { requireTool } from '../helpers/tools.js';
import { staticChecks } from '../../src/verify/static.js';

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv2020) => Ajv2020;
/** An independent validator for an upstream Talos schema file, formats included. */
const upstreamValidator = (file: string) => addFormats(new Ajv2020({ strict: false, allErrors: true })).compile(JSON.parse(readFileSync(file, 'utf8')));

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    if (relative(dir, p).startsWith('.edgeimg-state/')) continue; // incremental build stamps (mtimes): not artifacts
    out[relative(dir, p)] = sha(p);
  }
  return out;
}

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

const work = mkdtempSync(join(tmpdir(), 'edgeimg-build-'));
const out = join(work, 'out');
const secrets = join(work, 'secrets');
const catalogue = join(repoRoot, 'catalogue');
let firstTree: Record<string, string>;
let firstSecrets: Record<string, string>;

beforeAll(async () => {
  const r = await run(['build', '--all', '--catalogue', catalogue, '--out', out, '--secrets', secrets, '--media', 'iso,img', '--json']);
  expect(r.err).not.toMatch(/internal error/);
  expect(r.code).toBe(0);
  firstTree = tree(out);
  firstSecrets = tree(secrets);
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('edgeimg build on the example fleet', () => {
  it('builds every example site with the contract layout', () => {
    for (const [site, nodes] of Object.entries({ 'store-0412': ['cp-1', 'cp-2', 'cp-3'], 'store-0007': ['cp-1'], 'plant-0031': ['server-1', 'agent-1', 'agent-2'], 'lab-0001': ['ctl-1'] })) {
      const m = JSON.parse(readFileSync(join(out, site, 'manifest.json'), 'utf8'));
      expect(m).toMatchObject({ schemaVersion: 1, site, generator: { name: 'edgeimg' } });
      expect(m.inputDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
      for (const n of nodes) {
        for (const f of ['user-data', 'meta-data', 'network-config', 'seed.iso', 'seed.img']) {
          expect(existsSync(join(out, site, 'nodes', n, f)), `${site}/${n}/${f}`).toBe(true);
        }
      }
      expect(existsSync(join(out, site, 'talosconfig'))).toBe(m.os === 'talos');
      for (const a of m.artifacts) {
        expect(sha(join(out, site, a.path))).toBe(a.sha256);
        expect(statSync(join(out, site, a.path)).size).toBe(a.bytes);
        expect(statSync(join(out, site, a.path)).mode & 0o777).toBe(a.secret ? 0o600 : 0o644);
      }
      expect(m.artifacts.filter((a: { secret: boolean }) => a.secret).map((a: { kind: string }) => a.kind).sort()).toEqual(
        [...nodes.flatMap(() => ['seed-img', 'seed-iso', 'user-data']), ...(m.os === 'talos' ? ['talosconfig'] : [])].sort(),
      );
    }
  });

  it('stores site secrets outside the catalogue with mode 0600 and never prints them', async () => {
    for (const site of ['store-0412', 'store-0007', 'plant-0031', 'lab-0001']) {
      const f = join(secrets, site, 'secrets.yaml');
      expect(statSync(f).mode & 0o777).toBe(0o600);
      expect(statSync(join(secrets, site)).mode & 0o777).toBe(0o700);
    }
    const r = await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', out, '--secrets', secrets]);
    const text = readFileSync(join(secrets, 'store-0412', 'secrets.yaml'), 'utf8');
    const token = /bootstraptoken: (\S+)/.exec(text)![1]!;
    expect(r.err + r.out).not.toContain(token);
    expect(r.err + r.out).not.toMatch(/PRIVATE KEY/);
  });

  it('rebuilds byte-identically and keeps the PKI', async () => {
    // --force: render everything again (without it every site is kept as unchanged)
    const r = await run(['build', '--all', '--force', '--catalogue', catalogue, '--out', out, '--secrets', secrets, '--media', 'iso,img']);
    expect(r.code).toBe(0);
    expect(tree(secrets)).toEqual(firstSecrets);
    expect(tree(out)).toEqual(firstTree);
  });

  it('passes its own static verification', async () => {
    for (const site of ['store-0412', 'store-0007', 'plant-0031', 'lab-0001']) {
      const { results } = await staticChecks(join(out, site));
      expect(results.filter((r) => !r.ok)).toEqual([]);
    }
  });

  it('verify refuses a FAT16 seed stick, which Kairos (go-diskfs 1.7) never finds', async () => {
    if (!requireTool('mkfs.fat') || !requireTool('mcopy')) return;
    const site = join(work, 'fat16', 'plant-0031');
    cpSync(join(out, 'plant-0031'), site, { recursive: true });
    const node = join(site, 'nodes', 'server-1');
    const img = join(node, 'seed.img');
    rmSync(img);
    execFileSync('mkfs.fat', ['-F', '16', '-s', '1', '-n', 'CIDATA', '-C', img, '8192'], { stdio: 'pipe' });
    for (const f of ['user-data', 'meta-data', 'network-config']) execFileSync('mcopy', ['-i', img, join(node, f), `::/${f}`]);
    const manifestPath = join(site, 'manifest.json');
    const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const a = m.artifacts.find((x: { path: string }) => x.path === 'nodes/server-1/seed.img');
    a.sha256 = sha(img);
    a.bytes = statSync(img).size;
    writeFileSync(manifestPath, JSON.stringify(m, null, 2));
    const { results } = await staticChecks(site);
    const bad = results.filter((r) => !r.ok);
    expect(bad.map((r) => r.check)).toEqual(['seed-img']);
    expect(bad[0]!.message).toMatch(/FAT16 with \d+ clusters: Kairos \(go-diskfs 1\.7\) reads only FAT32/);
  });

  it('renders Talos configs valid against the upstream v1.13 schema', () => {
    // the upstream schema as the repository ships it, read by an Ajv of its own (not ours)
    const schemaFile = join(repoRoot, 'schemas', 'talos', 'v1.13', 'config.schema.json');
    const validate = upstreamValidator(schemaFile);
    let count = 0;
    for (const site of ['store-0412', 'store-0007']) {
      for (const n of readdirSync(join(out, site, 'nodes'))) {
        for (const d of parseAllDocuments(readFileSync(join(out, site, 'nodes', n, 'user-data'), 'utf8'))) {
          const doc = d.toJS();
          expect(validate(doc), `${site}/${n} ${doc.kind ?? 'v1alpha1'}: ${JSON.stringify(validate.errors)}`).toBe(true);
          count++;
        }
      }
    }
    expect(count).toBeGreaterThan(20);
  });

  it('renders Talos v1.14 configs (selected per site) valid against the upstream v1.14 schema', async () => {
    // the upstream schema as the repository ships it, read by an Ajv of its own (not ours)
    const schemaFile = join(repoRoot, 'schemas', 'talos', 'v1.14', 'config.schema.json');
    const copy = copyCatalogue();
    try {
      copy.edit('catalogue/sites/store-0007.yaml', (t) => t.replace('  profile: store-single', '  profile: store-single\n  talos: { version: v1.14.0, kubernetesVersion: v1.36.1 }'));
      const out14 = join(work, 'out14');
      const r = await run(['build', '--site', 'store-0007', '--catalogue', copy.catalogue, '--out', out14, '--secrets', secrets]);
      expect(r.code, r.err).toBe(0);
      const validate = upstreamValidator(schemaFile);
      const kinds: string[] = [];
      for (const d of parseAllDocuments(readFileSync(join(out14, 'store-0007', 'nodes', 'cp-1', 'user-data'), 'utf8'))) {
        const doc = d.toJS();
        kinds.push(doc.kind ?? 'v1alpha1');
        // SOURCE.md: the v1.14 schema's enum says "UnattendedInstall" where Talos registers UnattendedInstallConfig
        const seen = doc.kind === 'UnattendedInstallConfig' ? { ...doc, kind: 'UnattendedInstall' } : doc;
        expect(validate(seen), `${doc.kind ?? 'v1alpha1'}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
      expect(kinds).toEqual(expect.arrayContaining(['UnattendedInstallConfig', 'KubeletConfig', 'KubeAPIServerConfig', 'HostnameConfig', 'RegistryMirrorConfig']));
      expect(readFileSync(join(secrets, 'store-0007', 'secrets.yaml'), 'utf8')).toBe(readFileSync(join(secrets, 'store-0007', 'secrets.yaml'), 'utf8'));
    } finally {
      copy.cleanup();
    }
  });

  it('renders Kairos cloud-configs that pass cloud-init schema', async () => {
    if (!requireTool('cloud-init')) return;
    for (const [site, n] of [['plant-0031', 'server-1'], ['plant-0031', 'agent-1'], ['lab-0001', 'ctl-1']] as const) {
      const file = join(out, site, 'nodes', n, 'user-data');
      expect(readFileSync(file, 'utf8').split('\n')[0]).toBe('#cloud-config');
      const r = await execa('cloud-init', ['schema', '--config-file', file], { reject: false, all: true });
      expect(r.exitCode, r.all).toBe(0);
      expect(r.all).toMatch(/Valid cloud-config/);
    }
  });

  it('writes a talosconfig whose client certificate openssl verifies against the OS CA', async () => {
    if (!requireTool('openssl')) return;
    const cfg = parseYaml(readFileSync(join(out, 'store-0412', 'talosconfig'), 'utf8'));
    const ctx = cfg.contexts[cfg.context];
    expect(cfg.context).toBe('store-0412');
    expect(ctx.endpoints).toEqual(['10.4.12.11', '10.4.12.12', '10.4.12.13']);
    const ca = join(work, 'ca.pem');
    const crt = join(work, 'admin.pem');
    writeFileSync(ca, Buffer.from(ctx.ca, 'base64'));
    writeFileSync(crt, Buffer.from(ctx.crt, 'base64'));
    const v = await execa('openssl', ['verify', '-CAfile', ca, crt], { reject: false, all: true });
    expect(v.all).toMatch(/OK/);
    const text = await execa('openssl', ['x509', '-in', crt, '-noout', '-subject']);
    expect(text.stdout).toMatch(/O\s*=\s*os:admin/);
  });
});

describe('build failures change nothing', () => {
  let copy: CatalogueCopy;
  beforeAll(() => {
    copy = copyCatalogue();
  });
  afterAll(() => copy.cleanup());

  it('a catalogue error exits 1, lists FILE:LINE:COL and leaves OUT untouched', async () => {
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('subnet: 10.4.12.0/24', 'subnet: 10.4.12.0/33'));
    const before = tree(out);
    const r = await run(['build', '--all', '--catalogue', copy.catalogue, '--out', out, '--secrets', secrets]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/store-0412\.yaml:\d+:\d+: /);
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
    expect(tree(out)).toEqual(before);
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('10.4.12.0/33', '10.4.12.0/24'));
  });

  it('an overlay that breaks the Talos schema fails validate and build, naming the overlay file', async () => {
    copy.write('overlays/node-cp1-extra-sans.yaml', [
      'apiVersion: edgeimg.dev/v1alpha1', 'kind: Overlay', 'metadata:', '  name: breaks-schema', 'os: talos', 'patches:',
      '  - document: HostnameConfig', '    merge:', '      hostnameTypo: nope', '',
    ].join('\n'));
    const v = await run(['validate', '--catalogue', copy.catalogue]);
    expect(v.code).toBe(1);
    expect(v.err).toMatch(/overlays\/node-cp1-extra-sans\.yaml:\d+:\d+: .*HostnameConfig/);
    const before = tree(out);
    const r = await run(['build', '--site', 'store-0412', '--catalogue', copy.catalogue, '--out', out, '--secrets', secrets]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/overlays\/node-cp1-extra-sans\.yaml:\d+:\d+: .*HostnameConfig/);
    expect(tree(out)).toEqual(before);
  });
});

describe('edgeimg command line', () => {
  it('validates the example catalogue with exit 0', async () => {
    const r = await run(['validate', '--catalogue', catalogue, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ valid: true, sites: 4, nodes: 8 });
  });

  it('exits 2 on usage errors and unknown sites', async () => {
    expect((await run(['build', '--bogus'])).code).toBe(2);
    expect((await run(['build', '--catalogue', catalogue])).code).toBe(2);
    expect((await run(['build', '--site', 'store-9999', '--catalogue', catalogue, '--out', out, '--secrets', secrets])).code).toBe(2);
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['build', '--all', '--shard', '3/2', '--catalogue', catalogue])).code).toBe(2);
  });

  it('shards the fleet so that shards partition the sites', async () => {
    const ids: string[] = [];
    for (const k of [1, 2, 3]) {
      const r = await run(['build', '--all', '--shard', `${k}/3`, '--catalogue', catalogue, '--out', join(work, `shard${k}`), '--secrets', secrets, '--json']);
      expect(r.code).toBe(0);
      ids.push(...JSON.parse(r.out).sites.map((s: { site: string }) => s.site));
    }
    expect(ids.sort()).toEqual(['lab-0001', 'plant-0031', 'store-0007', 'store-0412']);
  });

  it('prints no stack trace for an environment error unless --debug', async () => {
    writeFileSync(join(work, 'not-a-dir'), 'x');
    const r = await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', join(work, 'not-a-dir'), '--secrets', secrets]);
    expect(r.code).toBe(3);
    expect(r.err).not.toMatch(/\n\s+at /);
    const d = await run(['build', '--site', 'store-0412', '--catalogue', catalogue, '--out', join(work, 'not-a-dir'), '--secrets', secrets, '--debug']);
    expect(d.err).toMatch(/\n\s+at /);
  });
});
