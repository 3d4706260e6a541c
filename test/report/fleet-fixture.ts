// A synthetic fleet for the report's page test: N catalogue sites in the catalogue's own
// format (the example fleet's defaults, hardware and profiles, as bench/fleet.ts makes them,
// but with mixed countries, tiers, OS versions and hardware), and, instead of a 40 s build,
// synthesized OUT/<site>/manifest.json and verify/summary.json files and site secrets whose
// admin certificates expire at chosen times. Deterministic: site i always gets the same state.

import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateTalosSecrets } from '../../src/secrets/generate.js';
import { issueAdminCert } from '../../src/secrets/lifecycle.js';
import { serializeSiteSecrets } from '../../src/secrets/store.js';
import { repoRoot } from '../helpers/catalogue.js';

const DAY = 86_400_000;

const PLACES: Array<[country: string, region: string, weight: number]> = [
  ['de', 'eu-central', 9],
  ['at', 'eu-central', 2],
  ['ch', 'eu-central', 1],
  ['fr', 'eu-west', 5],
  ['nl', 'eu-west', 2],
  ['es', 'eu-south', 3],
  ['it', 'eu-south', 3],
  ['pl', 'eu-east', 2],
  ['us', 'us-east', 4],
  ['ca', 'us-east', 1],
];
const PLACE_CYCLE = PLACES.flatMap(([c, r, w]) => Array.from({ length: w }, () => [c, r] as const));

export type Shape = 'ha3' | 'ha3-114' | 'single' | 'plant';

export interface FixtureSite {
  id: string;
  country: string;
  region: string;
  tier: string;
  shape: Shape;
  os: 'talos' | 'kairos';
  built: boolean;
  verify: 'pass' | 'fail' | 'stale' | 'never';
  /** Admin certificate days left at the fixture's `asOf` (Talos with secrets only). */
  certDays?: number;
  inputDigest: string;
}

export interface Fleet {
  root: string;
  catalogue: string;
  out: string;
  secrets: string;
  asOf: Date;
  sites: FixtureSite[];
  cleanup(): void;
}

export function siteId(i: number): string {
  return `store-${String(i + 1).padStart(4, '0')}`;
}

function mac(i: number, n: number): string {
  const v = i * 8 + n;
  return ['02', 'ed', '9e', (v >> 16) & 255, (v >> 8) & 255, v & 255].map((x) => (typeof x === 'number' ? x.toString(16).padStart(2, '0') : x)).join(':');
}

function siteOf(i: number): FixtureSite {
  const [country, region] = PLACE_CYCLE[(i * 7) % PLACE_CYCLE.length]!;
  const shape: Shape = (['ha3', 'ha3', 'ha3', 'single', 'single', 'ha3-114', 'ha3', 'plant', 'single', 'ha3'] as const)[i % 10]!;
  const built = i % 23 !== 5;
  const r = (i * 37) % 100;
  const verify = !built ? 'never' : r < 3 ? 'fail' : r < 10 ? 'stale' : r < 80 ? 'pass' : 'never';
  const os = shape === 'plant' ? 'kairos' : 'talos';
  const c = (i * 13) % 100;
  // mostly a long way off; a few within 30 days, fewer within 7, one in a hundred expired,
  // two in a hundred without secrets
  const certDays = os !== 'talos' || c < 2 ? undefined : c < 3 ? -4 : c < 5 ? 3 : c < 10 ? 21 : 60 + ((i * 29) % 300);
  return {
    id: siteId(i),
    country,
    region,
    tier: ['gold', 'silver', 'bronze', 'bronze'][i % 4]!,
    shape,
    os,
    built,
    verify,
    ...(certDays !== undefined ? { certDays } : {}),
    inputDigest: `sha256:${createHash('sha256').update(`build of ${siteId(i)}`).digest('hex')}`,
  };
}

function siteYaml(i: number, s: FixtureSite): string {
  const nodes = s.shape === 'plant' ? ['server-1', 'agent-1', 'agent-2'] : s.shape === 'single' ? ['cp-1'] : ['cp-1', 'cp-2', 'cp-3'];
  const profile = s.shape === 'plant' ? 'plant-k3s' : s.shape === 'single' ? 'store-single' : 'store-ha3';
  return [
    'apiVersion: edgeimg.dev/v1alpha1',
    'kind: Site',
    'metadata:',
    `  name: ${s.id}`,
    `  labels: { country: ${s.country}, region: ${s.region}, tier: ${s.tier} }`,
    'spec:',
    `  profile: ${profile}`,
    ...(s.shape === 'plant' ? ['  os: kairos'] : []),
    ...(s.shape === 'ha3-114' ? ['  talos: { version: v1.14.2 }'] : []),
    `  subnet: 10.${100 + (i >> 8)}.${i & 255}.0/24`,
    '  nodes:',
    ...nodes.map((n, k) => `    - { name: ${n}, mac: "${mac(i, k + 1)}" }`),
    '',
  ].join('\n');
}

/** The catalogue of `n` sites, their outputs and secrets, in a new temp directory. */
export async function makeFleet(n: number, asOf = new Date('2026-12-01T12:00:00Z')): Promise<Fleet> {
  const root = mkdtempSync(join(tmpdir(), 'edgeimg-report-fleet-'));
  const catalogue = join(root, 'catalogue');
  const out = join(root, 'out');
  const secrets = join(root, 'secrets');
  cpSync(join(repoRoot, 'catalogue'), catalogue, { recursive: true });
  cpSync(join(repoRoot, 'overlays'), join(root, 'overlays'), { recursive: true });
  rmSync(join(catalogue, 'sites'), { recursive: true, force: true });
  mkdirSync(join(catalogue, 'sites'));
  const sites = Array.from({ length: n }, (_, i) => siteOf(i));
  sites.forEach((s, i) => writeFileSync(join(catalogue, 'sites', `${s.id}.yaml`), siteYaml(i, s)));

  // One Talos PKI (RSA-4096 takes a second), with an admin certificate per expiry wanted.
  const base = await generateTalosSecrets();
  const texts = new Map<number, string>();
  const textFor = async (days: number): Promise<string> => {
    let t = texts.get(days);
    if (t === undefined) {
      // valid one year from its issue: issued (365 - days) days before asOf... to the second
      const issued = new Date(asOf.getTime() + days * DAY - 8_760 * 3600 * 1000 + 3600 * 1000);
      t = serializeSiteSecrets({ ...base, admin: await issueAdminCert(base.certs.os, issued) });
      texts.set(days, t);
    }
    return t;
  };

  mkdirSync(out);
  for (const s of sites) {
    if (s.certDays !== undefined) {
      const d = join(secrets, s.id);
      mkdirSync(d, { recursive: true, mode: 0o700 });
      writeFileSync(join(d, 'secrets.yaml'), await textFor(s.certDays), { mode: 0o600 });
      chmodSync(join(d, 'secrets.yaml'), 0o600);
    }
    if (!s.built) continue;
    const dir = join(out, s.id);
    mkdirSync(join(dir, 'verify'), { recursive: true });
    const nodes = s.shape === 'plant' ? 3 : s.shape === 'single' ? 1 : 3;
    writeFileSync(
      join(dir, 'manifest.json'),
      `${JSON.stringify({
        schemaVersion: 1,
        site: s.id,
        os: s.os,
        osVersion: s.os === 'talos' ? (s.shape === 'ha3-114' ? 'v1.14.2' : 'v1.13.9') : 'v3.5.1 k3s v1.33.4+k3s1',
        generator: { name: 'edgeimg', version: '0.1.0' },
        inputDigest: s.inputDigest,
        artifacts: [],
        nodes: [],
        ...(s.shape === 'single' ? { bootMedia: [{ hardwareClass: 'legacy-amd64', os: 'talos', version: 'v1.13.9', name: 'nocloud-amd64.iso', asset: 'x', standin: 'talos-like' }] } : {}),
      }, null, 2)}\n`,
    );
    if (s.verify === 'never') continue;
    const checks = Array.from({ length: nodes * 4 }, (_, k) => ({ check: ['digest', 'seed-readback', 'identity', 'boot'][k % 4], node: `n-${k >> 2}`, ok: !(s.verify === 'fail' && k === 3), message: 'ok' }));
    const failed = checks.filter((c) => !c.ok).length;
    writeFileSync(
      join(dir, 'verify', 'summary.json'),
      JSON.stringify({
        schemaVersion: 1,
        site: s.id,
        ok: failed === 0,
        passed: checks.length - failed,
        failed,
        boot: s.id.endsWith('0') ? 'all' : 'none',
        via: s.id.endsWith('0') ? 'seed' : null,
        inputDigest: s.verify === 'stale' ? `sha256:${'0'.repeat(64)}` : s.inputDigest,
        finishedAt: new Date(asOf.getTime() - ((Number(s.id.slice(-4)) * 997) % 40) * 3600_000).toISOString(),
        checks,
        futureField: { anything: true },
      }),
    );
  }
  return { root, catalogue, out, secrets, asOf, sites, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
