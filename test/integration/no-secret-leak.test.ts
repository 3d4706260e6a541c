// No secret in any output: recognisable values are planted in every secret field of the site
// secrets, every kind of artifact is broken in turn, and `verify` (--json, --junit, stderr,
// serial logs) must never print one of them, nor a fragment of a private key.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { main } from '../../src/cli/main.js';
import { repoRoot } from '../helpers/catalogue.js';

const work = mkdtempSync(join(tmpdir(), 'edgeimg-leak-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const catalogue = join(repoRoot, 'catalogue');
const secrets = join(work, 'secrets');
const pristine = join(work, 'pristine');

const b64 = (s: string): string => Buffer.from(s).toString('base64');
/** Planted values: recognisable, and in the shapes Talos and Kairos require. */
const PLANTED = {
  bootstrapToken: 'cnry01.cnryboot00000001',
  trustdToken: 'cnry02.cnrytrustd000002',
  kairosToken: 'cnry03.cnrykairos000003',
  secretbox: b64('CANARY-secretbox-00000000000000!'),
  clusterSecret: b64('CANARY-clustersecret-0000000000!'),
};
const canaries: string[] = [];

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

/** 24-character pieces of every private key's PEM body and of its base64 form. */
function keyFragments(pem: string): string[] {
  const body = pem.split('\n').filter((l) => !l.startsWith('-----')).join('');
  const out: string[] = [];
  for (let i = 0; i + 24 <= body.length; i += 24) out.push(body.slice(i, i + 24));
  const whole = b64(pem);
  for (let i = 0; i + 24 <= whole.length; i += 24) out.push(whole.slice(i, i + 24));
  return out;
}

function plant(site: string, os: 'talos' | 'kairos'): void {
  const file = join(secrets, site, 'secrets.yaml');
  const doc = parseDocument(readFileSync(file, 'utf8'));
  if (os === 'talos') {
    doc.setIn(['secrets', 'bootstraptoken'], PLANTED.bootstrapToken);
    doc.setIn(['trustdinfo', 'token'], PLANTED.trustdToken);
    doc.setIn(['secrets', 'secretboxencryptionsecret'], PLANTED.secretbox);
    doc.setIn(['cluster', 'secret'], PLANTED.clusterSecret);
    for (const path of [['certs', 'os'], ['certs', 'k8s'], ['certs', 'k8saggregator'], ['certs', 'etcd'], ['certs', 'k8sserviceaccount'], ['edgeimg', 'admin']]) {
      const key = doc.getIn([...path, 'key']) as string;
      canaries.push(...keyFragments(Buffer.from(key, 'base64').toString('utf8')));
    }
  } else {
    doc.setIn(['token'], PLANTED.kairosToken);
    canaries.push(...keyFragments(Buffer.from(doc.getIn(['ca', 'key']) as string, 'base64').toString('utf8')));
  }
  writeFileSync(file, doc.toString());
  chmodSync(file, 0o600);
}

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Make the manifest agree with a changed artifact, so that the deeper checks parse it. */
function forge(siteDir: string, rel: string): void {
  const m = JSON.parse(readFileSync(join(siteDir, 'manifest.json'), 'utf8'));
  const a = m.artifacts.find((x: { path: string }) => x.path === rel);
  a.sha256 = sha(join(siteDir, rel));
  a.bytes = statSync(join(siteDir, rel)).size;
  writeFileSync(join(siteDir, 'manifest.json'), JSON.stringify(m, null, 2));
}

beforeAll(async () => {
  // first build makes the secrets; plant the canaries; build again with them
  expect((await run(['build', '--all', '--catalogue', catalogue, '--out', join(work, 'first'), '--secrets', secrets])).code).toBe(0);
  for (const [site, os] of [['store-0412', 'talos'], ['store-0007', 'talos'], ['plant-0031', 'kairos'], ['lab-0001', 'kairos']] as const) plant(site, os);
  canaries.push(...Object.values(PLANTED), PLANTED.kairosToken.replace('.', ''));
  const r = await run(['build', '--all', '--catalogue', catalogue, '--out', pristine, '--secrets', secrets, '--media', 'iso,img']);
  expect(r.code, r.err).toBe(0);
  // the planted values really are in the artifacts we are about to break
  expect(readFileSync(join(pristine, 'store-0412', 'nodes', 'cp-1', 'user-data'), 'utf8')).toContain(PLANTED.trustdToken);
  expect(readFileSync(join(pristine, 'plant-0031', 'nodes', 'agent-1', 'user-data'), 'utf8')).toContain(PLANTED.kairosToken.replace('.', ''));
}, 300_000);

type Breakage = { name: string; site: string; rel: string; change: (text: string) => string; binary?: boolean };

const BREAKAGES: Breakage[] = [
  // a YAML error on the very line holding the token
  { name: 'Talos user-data, broken at the trustd token line', site: 'store-0412', rel: 'nodes/cp-1/user-data', change: (t) => t.replace(PLANTED.trustdToken, `${PLANTED.trustdToken}: : [`) },
  { name: 'Talos user-data, broken at a CA key line', site: 'store-0412', rel: 'nodes/cp-1/user-data', change: (t) => t.replace(/(\n\s+key: )(\S+)/, '$1"$2\n  [') },
  { name: 'Talos user-data, token as the first line', site: 'store-0007', rel: 'nodes/cp-1/user-data', change: (t) => `${PLANTED.bootstrapToken} {{\n${t}` },
  { name: 'Kairos user-data, token as the first line', site: 'plant-0031', rel: 'nodes/agent-1/user-data', change: (t) => `K3S_TOKEN=${PLANTED.kairosToken.replace('.', '')}\n${t}` },
  { name: 'Kairos user-data, CA key line made invalid', site: 'lab-0001', rel: 'nodes/ctl-1/user-data', change: (t) => t.replace(/-----BEGIN (EC )?PRIVATE KEY-----\n/, '$&: ] {\n') },
  { name: 'talosconfig, broken YAML at the key', site: 'store-0412', rel: 'talosconfig', change: (t) => t.replace(/(key: )(\S+)/, '$1[$2: {') },
  { name: 'talosconfig, key truncated', site: 'store-0007', rel: 'talosconfig', change: (t) => t.replace(/(key: \S{40})\S+/, '$1') },
  { name: 'meta-data', site: 'store-0412', rel: 'nodes/cp-2/meta-data', change: (t) => `${t}: [\n` },
  { name: 'network-config', site: 'plant-0031', rel: 'nodes/server-1/network-config', change: (t) => `${t}\n  - ] {\n` },
  { name: 'seed.iso, user-data bytes flipped', site: 'store-0412', rel: 'nodes/cp-3/seed.iso', change: (t) => t, binary: true },
  { name: 'seed.img, user-data bytes flipped', site: 'plant-0031', rel: 'nodes/server-1/seed.img', change: (t) => t, binary: true },
];

function flipSecretBytes(file: string, needle: string): void {
  const buf = readFileSync(file);
  const at = buf.indexOf(needle);
  expect(at, `${needle} in ${file}`).toBeGreaterThan(0);
  buf[at + 2] = buf[at + 2]! ^ 0x20;
  writeFileSync(file, buf);
}

describe('verify never prints a secret', () => {
  it.each(BREAKAGES.map((b) => [b.name, b] as const))('%s', async (name, b) => {
    const dir = join(work, name.replace(/[^a-z0-9]+/gi, '-'));
    cpSync(pristine, dir, { recursive: true });
    const siteDir = join(dir, b.site);
    const file = join(siteDir, b.rel);
    if (b.binary) flipSecretBytes(file, b.site.startsWith('store') ? PLANTED.trustdToken : PLANTED.kairosToken.replace('.', ''));
    else {
      const before = readFileSync(file, 'utf8');
      const after = b.change(before);
      expect(after).not.toBe(before);
      writeFileSync(file, after);
    }
    const outputs: string[] = [];
    for (const forged of [false, true]) {
      if (forged) forge(siteDir, b.rel);
      const junit = join(dir, `junit-${forged}.xml`);
      const r = await run(['verify', '--site', b.site, '--out', dir, '--json', '--junit', junit]);
      expect(r.code, `${name} must fail verification`).toBe(1);
      outputs.push(r.out, r.err, existsSync(junit) ? readFileSync(junit, 'utf8') : '');
    }
    const verifyDir = join(siteDir, 'verify');
    if (existsSync(verifyDir)) for (const f of readdirSync(verifyDir)) outputs.push(readFileSync(join(verifyDir, f), 'utf8'));
    const all = outputs.join('\n');
    expect(all.length).toBeGreaterThan(0);
    for (const c of canaries) expect(all.includes(c), `${name}: output contains secret fragment ${c.slice(0, 6)}…`).toBe(false);
    expect(all).not.toMatch(/PRIVATE KEY/);
  });
});

describe('verify --boot never prints a secret, serial logs included', () => {
  it('a Talos site whose user-data and seed were changed (manifest forged) fails the boot without quoting them', async () => {
    const { bootPrereqs, ensureProbeImages } = await import('../boot/helpers.js');
    if (!bootPrereqs(['amd64'], 'the --boot secret-leak check').run) return;
    ensureProbeImages(['amd64']);
    const dir = join(work, 'boot');
    cpSync(pristine, dir, { recursive: true });
    const siteDir = join(dir, 'store-0007');
    flipSecretBytes(join(siteDir, 'nodes/cp-1/seed.iso'), PLANTED.trustdToken);
    forge(siteDir, 'nodes/cp-1/seed.iso');
    const junit = join(dir, 'junit.xml');
    const r = await run(['verify', '--site', 'store-0007', '--out', dir, '--boot', '--json', '--junit', junit, '--timeout', '90']);
    expect(r.code).toBe(1);
    const logs = readdirSync(join(siteDir, 'verify')).map((f) => readFileSync(join(siteDir, 'verify', f), 'utf8'));
    expect(logs.length).toBeGreaterThan(0);
    const all = [r.out, r.err, readFileSync(junit, 'utf8'), ...logs].join('\n');
    for (const c of canaries) expect(all.includes(c), `output contains secret fragment ${c.slice(0, 6)}…`).toBe(false);
  }, 180_000);
});
