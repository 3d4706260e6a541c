// edgeimg report on the example fleet, built for real: which sites were built and verified (and
// whether the result is stale), admin certificate expiry when the secrets can be read, no secret
// value anywhere in the page, the same bytes for the same inputs, hostile label values escaped,
// and the command's exit codes. test/report/page-chromium.test.ts runs the page in a browser.

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/main.js';
import { fleetReport, type FleetReportOptions } from '../../src/report/index.js';
import { ageEncrypt } from '../../src/secrets/age.js';
import { certificateDates } from '../../src/secrets/lifecycle.js';
import { readSiteStore } from '../../src/secrets/store.js';
import { copyCatalogue, repoRoot } from '../helpers/catalogue.js';
import { findChromium, rowsOf, runChromium } from './chromium.js';

const DAY = 86_400_000;
const work = mkdtempSync(join(tmpdir(), 'edgeimg-report-'));
const out = join(work, 'out');
const secrets = join(work, 'secrets');
const catalogue = join(repoRoot, 'catalogue');
const BUILT = ['store-0412', 'store-0007', 'plant-0031'];
let digest: Record<string, string> = {};
let adminNotAfter: Date;

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let o = '';
  let e = '';
  const code = await main(args, { out: (s) => (o += s), err: (s) => (e += s) });
  return { code, out: o, err: e };
}

function writeVerify(site: string, summary: Record<string, unknown>, dir = out): void {
  mkdirSync(join(dir, site, 'verify'), { recursive: true });
  writeFileSync(join(dir, site, 'verify', 'summary.json'), JSON.stringify({ schemaVersion: 1, site, ...summary }));
}

const base = (over: Partial<FleetReportOptions> = {}): FleetReportOptions => ({ catalogueDir: catalogue, outDir: out, secretsDir: secrets, env: {}, ...over });

/** The page's row for a site: its attributes and cells (text and title). */
function row(html: string, site: string): { attrs: Record<string, string>; cells: Array<{ text: string; title?: string }> } {
  const m = new RegExp(`<tr ([^>]*)><td[^>]*>${site}</td>.*?</tr>`).exec(html);
  if (!m) throw new Error(`no row for ${site}`);
  const attrs = Object.fromEntries([...m[1]!.matchAll(/data-(\w)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]));
  const cells = [...m[0].matchAll(/<td( title="([^"]*)")?>(.*?)<\/td>/g)].map((c) => ({ text: c[3]!.replace(/<[^>]+>/g, ''), ...(c[2] !== undefined ? { title: c[2] } : {}) }));
  return { attrs, cells };
}
const VERIFY = 6;
const CERT = 7;
const BUILD = 5;

beforeAll(async () => {
  const r = await run(['build', ...BUILT.flatMap((s) => ['--site', s]), '--catalogue', catalogue, '--out', out, '--secrets', secrets]);
  expect(r.code, r.err).toBe(0);
  digest = Object.fromEntries(BUILT.map((s) => [s, JSON.parse(readFileSync(join(out, s, 'manifest.json'), 'utf8')).inputDigest as string]));
  writeVerify('store-0412', { ok: true, passed: 12, failed: 0, boot: 'all', via: 'seed', inputDigest: digest['store-0412'], finishedAt: '2026-12-01T20:00:00.000Z', checks: [{ check: 'digest', node: null, ok: true, message: 'ok' }], somethingNew: [1, 2] });
  writeVerify('store-0007', {
    ok: false,
    passed: 3,
    failed: 1,
    boot: 'none',
    via: null,
    inputDigest: digest['store-0007'],
    finishedAt: '2026-11-30T08:00:00.000Z',
    checks: [{ check: 'seed-readback', node: 'cp-1', ok: false, message: 'seed.iso differs from the manifest' }],
  });
  // verified, then built again from other inputs: the result no longer speaks for the build
  writeVerify('plant-0031', { ok: true, passed: 9, failed: 0, boot: 'none', via: null, inputDigest: `sha256:${'1'.repeat(64)}`, finishedAt: '2026-11-29T08:00:00.000Z', checks: [] });
  const stored = await readSiteStore(secrets, 'store-0412', { os: 'talos' });
  adminNotAfter = certificateDates((stored!.secrets as { admin: { crt: string } }).admin.crt).notAfter;
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('edgeimg report: build and verify state per site', () => {
  it('shows never-built, built, verified pass, verified fail and stale sites as such', async () => {
    const { html, summary, sites } = await fleetReport(base());
    expect(sites.map((s) => s.site).sort()).toEqual(['lab-0001', 'plant-0031', 'store-0007', 'store-0412']);
    expect(summary.builds).toEqual({ built: 3, notBuilt: 1, unreadable: 0 });
    expect(summary.verify).toEqual({ pass: 1, fail: 1, stale: 1, never: 1, unreadable: 0 });
    expect(summary.attention).toMatchObject({ verifyFailed: ['store-0007'], verifyStale: ['plant-0031'] });

    const never = row(html, 'lab-0001');
    expect(never.attrs['v']).toBe('never');
    expect(never.cells[BUILD]!.text).toBe('not built');

    const pass = row(html, 'store-0412');
    expect(pass.attrs).toMatchObject({ c: 'de', r: 'eu-central', t: 'gold', o: 'talos v1.13.9', v: 'pass' });
    expect(pass.cells[VERIFY]!.text).toBe('pass all · seed');
    expect(pass.cells[VERIFY]!.title).toBe('verified 2026-12-01 20:00 UTC; 12 passed, 0 failed; boot all via seed');
    // last build: the short digest shown, the whole one in its title, and the generator version
    expect(html).toContain(`<code title="${digest['store-0412']}">${digest['store-0412']!.slice(7, 19)}</code> <small>0.1.0</small>`);
    expect(pass.cells[3]!.text).toBe('nuc12-amd64');
    expect(pass.cells[4]!.text).toBe('3');

    const fail = row(html, 'store-0007');
    expect(fail.attrs['v']).toBe('fail');
    expect(fail.cells[VERIFY]!.text).toBe('FAIL 1 of 4');
    expect(fail.cells[VERIFY]!.title).toContain('failed: seed-readback (cp-1)');
    expect(html).not.toContain('seed.iso differs'); // check names only, never the verifier's messages

    const stale = row(html, 'plant-0031');
    expect(stale.attrs['v']).toBe('stale');
    expect(stale.cells[VERIFY]!.text).toBe('stale was pass');
    expect(stale.cells[VERIFY]!.title).toContain(`but the current build is ${digest['plant-0031']!.slice(7, 19)}`);
    expect(stale.attrs['o']).toBe('kairos v3.5.1 k3s v1.33.4+k3s1');
  });

  it('counts OS versions and hardware classes, and groups sites by country and region', async () => {
    const { html, summary } = await fleetReport(base());
    expect(summary.sites).toBe(4);
    expect(summary.nodes).toBe(8);
    expect(summary.os).toEqual([
      { os: 'kairos', version: 'v3.5.1 k0s v1.33.4+k0s.0', sites: 1, nodes: 1 },
      { os: 'kairos', version: 'v3.5.1 k3s v1.33.4+k3s1', sites: 1, nodes: 3 },
      { os: 'talos', version: 'v1.13.9', sites: 2, nodes: 4 },
    ]);
    expect(summary.hardware.map((h) => `${h.name}:${h.sites}:${h.nodes}`)).toEqual(['ipc-amd64:1:3', 'legacy-amd64:1:1', 'nuc12-amd64:1:3', 'rpi4-arm64:1:1']);
    expect([...html.matchAll(/<h3>([^<]*)<small>([^<]*)<\/small><\/h3>/g)].map((m) => `${m[1]}: ${m[2]}`)).toEqual([
      'at · eu-central: 1 site',
      'de · eu-central: 2 sites',
      'pl · eu-east: 1 site',
    ]);
  });

  it('a verify summary that is not one, or is for another site, is unreadable, not a pass', async () => {
    const odd = join(work, 'odd-out');
    cpSync(out, odd, { recursive: true });
    writeFileSync(join(odd, 'store-0412', 'verify', 'summary.json'), '{"ok": tru');
    writeVerify('store-0007', { site: 'store-9999', ok: true, inputDigest: digest['store-0007'] }, odd);
    const { summary, sites } = await fleetReport(base({ outDir: odd }));
    expect(sites.find((s) => s.site === 'store-0412')!.verify.state).toBe('unreadable');
    expect(sites.find((s) => s.site === 'store-0007')!.verify.state).toBe('unreadable');
    expect(summary.verify.unreadable).toBe(2);
  });
});

describe('edgeimg report: admin certificate expiry', () => {
  it('shows days left, a warning under 30 days, critical under 7, expired after', async () => {
    const at = (daysBefore: number): Date => new Date(adminNotAfter.getTime() - daysBefore * DAY);
    const cases: Array<[Date, string, string]> = [
      [at(200.5), 'ok', '200 d'],
      [at(20.5), 'warning', '20 d'],
      [at(3.5), 'critical', '3 d'],
      [at(-1), 'critical', 'expired'],
    ];
    for (const [now, filter, text] of cases) {
      const { html, summary } = await fleetReport(base({ now }));
      const r = row(html, 'store-0412');
      expect(r.attrs['x'], text).toBe(filter);
      expect(r.cells[CERT]!.text).toBe(text);
      expect(r.cells[CERT]!.title).toContain(`notAfter ${adminNotAfter.toISOString().slice(0, 10)}`);
      expect(summary.asOfSource).toBe('now');
      // Kairos sites have no admin certificate
      expect(row(html, 'plant-0031').cells[CERT]!.text).toBe('n/a');
    }
    // store-0007's certificate was issued in the same build, seconds apart
    const { summary } = await fleetReport(base({ now: at(20.5) }));
    expect(summary.attention.certExpiring).toContainEqual({ site: 'store-0412', notAfter: adminNotAfter.toISOString(), daysLeft: 20 });
    expect(summary.attention.certExpiring.map((c) => c.site).sort()).toEqual(['store-0007', 'store-0412']);
    expect(summary.adminCerts).toMatchObject({ ok: 0, warning: 2, critical: 0, expired: 0, unknown: 0, none: 2 });
  });

  it('shows "unknown" when the secrets are missing, too open, or encrypted without an identity, and still writes the report', async () => {
    const empty = join(work, 'no-secrets');
    mkdirSync(empty);
    const r1 = await fleetReport(base({ secretsDir: empty }));
    expect(row(r1.html, 'store-0412').cells[CERT]!).toMatchObject({ text: 'unknown', title: 'no site secrets in the secrets directory' });
    expect(r1.summary.adminCerts).toMatchObject({ unknown: 2, none: 2 });

    const open = join(work, 'open-secrets');
    cpSync(secrets, open, { recursive: true });
    execFileSync('chmod', ['0644', join(open, 'store-0412', 'secrets.yaml')]);
    expect(row((await fleetReport(base({ secretsDir: open }))).html, 'store-0412').cells[CERT]!.text).toBe('unknown');

    const enc = join(work, 'enc-secrets');
    mkdirSync(join(enc, 'store-0412'), { recursive: true, mode: 0o700 });
    const id = await generateIdentity();
    const text = readFileSync(join(secrets, 'store-0412', 'secrets.yaml'), 'utf8');
    writeFileSync(join(enc, 'store-0412', 'secrets.yaml.age'), await ageEncrypt(text, [await identityToRecipient(id)]), { mode: 0o600 });
    const r2 = await fleetReport(base({ secretsDir: enc, env: {} }));
    const cell = row(r2.html, 'store-0412').cells[CERT]!;
    expect(cell.text).toBe('unknown');
    expect(cell.title).toContain('age-encrypted and no age identity');
    // with the identity, the date is known again
    const idFile = join(work, 'age-identity.txt');
    writeFileSync(idFile, `${id}\n`, { mode: 0o600 });
    const r3 = await fleetReport(base({ secretsDir: enc, env: { EDGEIMG_AGE_IDENTITY: idFile }, now: new Date(adminNotAfter.getTime() - 100.5 * DAY) }));
    expect(row(r3.html, 'store-0412').cells[CERT]!.text).toBe('100 d');
    // a wrong identity: unknown, not a failure
    const other = join(work, 'other-identity.txt');
    writeFileSync(other, `${await generateIdentity()}\n`, { mode: 0o600 });
    const r4 = await fleetReport(base({ secretsDir: enc, env: { EDGEIMG_AGE_IDENTITY: other } }));
    expect(row(r4.html, 'store-0412').cells[CERT]!.text).toBe('unknown');
  });

  it('never puts a secret value into the page or the summary', async () => {
    const r = await fleetReport(base({ now: new Date(adminNotAfter.getTime() - 10 * DAY) }));
    const json = JSON.stringify(r.summary);
    const values = new Set<string>();
    const collect = (v: unknown): void => {
      if (typeof v === 'string') {
        values.add(v);
        // base64 PEM fields: the PEM text and every line of its body
        const pem = Buffer.from(v, 'base64').toString('utf8');
        if (pem.includes('-----BEGIN')) for (const line of pem.split('\n')) if (line.length >= 16 && !line.startsWith('-----')) values.add(line);
      } else if (v && typeof v === 'object') Object.values(v).forEach(collect);
    };
    for (const site of ['store-0412', 'store-0007', 'plant-0031']) collect(parseYaml(readFileSync(join(secrets, site, 'secrets.yaml'), 'utf8')));
    collect(parseYaml(readFileSync(join(out, 'store-0412', 'talosconfig'), 'utf8')));
    const secretValues = [...values].filter((v) => v.length >= 12);
    expect(secretValues.length).toBeGreaterThan(30);
    for (const v of secretValues) {
      expect(r.html.includes(v), `a secret value is in the page: ${v.slice(0, 8)}…`).toBe(false);
      expect(json.includes(v)).toBe(false);
    }
    expect(r.html).not.toMatch(/-----BEGIN|PRIVATE KEY|AGE-SECRET-KEY/);
  });
});

describe('edgeimg report: the page', () => {
  it('is the same bytes for the same inputs, dated by the newest verify result, not the clock', async () => {
    const a = await fleetReport(base());
    await new Promise((r) => setTimeout(r, 1100));
    const b = await fleetReport(base());
    expect(b.html).toBe(a.html);
    expect(a.summary).toMatchObject({ asOf: '2026-12-01T20:00:00.000Z', asOfSource: 'verify' });
    expect(a.html).toContain('As of <time datetime="2026-12-01T20:00:00.000Z">2026-12-01 20:00 UTC</time>: the newest verify result (store-0412)');
    // SOURCE_DATE_EPOCH and --now take precedence, and the page says which
    const sde = await fleetReport(base({ env: { SOURCE_DATE_EPOCH: '1798761600' } }));
    expect(sde.summary).toMatchObject({ asOf: '2027-01-01T00:00:00.000Z', asOfSource: 'SOURCE_DATE_EPOCH' });
    expect(sde.html).toContain('2027-01-01 00:00 UTC</time>: SOURCE_DATE_EPOCH.');
    // no verify result: the newest build's manifest.json
    const built = join(work, 'built-only');
    cpSync(join(out, 'store-0007'), join(built, 'store-0007'), { recursive: true });
    rmSync(join(built, 'store-0007', 'verify'), { recursive: true });
    utimesSync(join(built, 'store-0007', 'manifest.json'), new Date('2026-10-10T10:10:10Z'), new Date('2026-10-10T10:10:10Z'));
    const m = await fleetReport(base({ outDir: built, sites: ['store-0007'] }));
    expect(m.summary).toMatchObject({ asOf: '2026-10-10T10:10:10.000Z', asOfSource: 'build', sites: 1 });
    // nothing at all: no date, and the page says so
    const none = await fleetReport(base({ sites: ['lab-0001'] }));
    expect(none.summary).toMatchObject({ asOf: null, asOfSource: 'none' });
  });

  it('escapes hostile label values: no markup, no script, no attribute breakout', async () => {
    const c = copyCatalogue();
    try {
      c.edit('catalogue/sites/store-0412.yaml', (t) =>
        t.replace(
          'labels: { country: de, region: eu-central, tier: gold }',
          `labels: { country: de, region: "eu-central</td><script>alert(1)</script>", tier: "<script>alert(2)</script>", owner: "\\"><img src=x onerror=alert(3)>" }`,
        ),
      );
      const { html } = await fleetReport({ catalogueDir: c.catalogue, outDir: join(c.root, 'out'), secretsDir: join(c.root, 'secrets'), env: {} });
      expect(html.match(/<script/g)).toHaveLength(1); // the page's own
      expect(html).not.toContain('<img');
      expect(html).not.toContain('alert(1)</script>');
      expect(html).toContain('&lt;script&gt;alert(2)&lt;/script&gt;');
      expect(html).toContain('data-r="eu-central&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
      expect(html).toContain('title="owner: &quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert(3)&gt;"');
      // and the filter lists them as text
      expect(html).toContain('<option value="&lt;script&gt;alert(2)&lt;/script&gt;">Tier: &lt;script&gt;alert(2)&lt;/script&gt;</option>');
    } finally {
      c.cleanup();
    }
  });

  it('needs nothing from outside: no external scripts, styles, fonts or images', async () => {
    const { html } = await fleetReport(base());
    expect(html).not.toMatch(/<link|<img|<iframe|<object|<embed|@import|@font-face|\ssrc=|https?:\/\//i);
    expect(html).not.toMatch(/\burl\(/); // CSS url(), not URLSearchParams(
    expect(html.match(/<script>/g)).toHaveLength(1);
    expect(html.match(/<style>/g)).toHaveLength(1);
  });

  it('renders in headless Chromium (example fleet), with a screenshot', async () => {
    const chromium = findChromium();
    if (!chromium) return;
    const file = join(work, 'report.html');
    expect((await run(['report', '--catalogue', catalogue, '--out', out, '--secrets', secrets, '--html', file])).code).toBe(0);
    const dom = await runChromium(chromium, join(work, 'chrome'), ['--virtual-time-budget=3000', '--dump-dom', `file://${file}#verify=fail`]);
    expect(rowsOf(dom.stdout).map((r) => `${r.site}${r.hidden ? ' hidden' : ''}`)).toEqual(['store-0007', 'lab-0001 hidden', 'store-0412 hidden', 'plant-0031 hidden']);
    const png = join(process.env['EDGEIMG_SCREENSHOT_DIR'] ?? work, 'report.png');
    await runChromium(chromium, join(work, 'chrome'), ['--window-size=1400,800', '--virtual-time-budget=3000', `--screenshot=${png}`, `file://${file}`]);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    expect(statSync(png).size).toBeGreaterThan(30_000);
  }, 180_000);
});

describe('edgeimg report: the command', () => {
  it('writes the page atomically with mode 0644, and --json prints the summary', async () => {
    const dir = join(work, 'cli');
    mkdirSync(dir);
    const file = join(dir, 'fleet.html');
    writeFileSync(file, 'old contents');
    const r = await run(['report', '--all', '--catalogue', catalogue, '--out', out, '--secrets', secrets, '--html', file, '--json']);
    expect(r.code, r.err).toBe(0);
    const summary = JSON.parse(r.out);
    expect(summary).toMatchObject({ ok: true, sites: 4, nodes: 8, html: file, verify: { pass: 1, fail: 1, stale: 1, never: 1 } });
    expect(summary.bytes).toBe(statSync(file).size);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(readFileSync(file, 'utf8')).toMatch(/^<!doctype html>/);
    expect(readdirSync(dir)).toEqual(['fleet.html']); // no temporary file left
    expect(r.err).toMatch(/^edgeimg: wrote the fleet report \(4 sites, 8 nodes, \d+ KiB\) to .*fleet\.html; as of 2026-12-01T20:00:00.000Z \(verify\); 1 failed verify, 1 stale verify\n$/);
    // the same inputs, the same bytes, through the command too
    const again = join(dir, 'again.html');
    expect((await run(['report', '--catalogue', catalogue, '--out', out, '--secrets', secrets, '--html', again])).code).toBe(0);
    expect(readFileSync(again)).toEqual(readFileSync(file));
  });

  it('reads --secrets from EDGEIMG_SECRETS_DIR by default and takes --site and --now', async () => {
    const file = join(work, 'one.html');
    const saved = process.env['EDGEIMG_SECRETS_DIR'];
    process.env['EDGEIMG_SECRETS_DIR'] = secrets;
    try {
      const r = await run(['report', '--site', 'store-0412', '--catalogue', catalogue, '--out', out, '--html', file, '--now', '@1798761600', '--json']);
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({ sites: 1, asOf: '2027-01-01T00:00:00.000Z', asOfSource: 'now', adminCerts: { unknown: 0 } });
    } finally {
      if (saved === undefined) delete process.env['EDGEIMG_SECRETS_DIR'];
      else process.env['EDGEIMG_SECRETS_DIR'] = saved;
    }
  });

  it('exits 2 on usage errors', async () => {
    const html = join(work, 'x.html');
    const common = ['--catalogue', catalogue, '--out', out, '--secrets', secrets];
    for (const args of [
      ['report', ...common],
      ['report', ...common, '--html', html, '--all', '--site', 'store-0412'],
      ['report', ...common, '--html', html, '--site', 'store-9999'],
      ['report', ...common, '--html', html, '--now', 'yesterday'],
      ['report', ...common, '--html', html, '--bogus'],
    ]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(existsSync(html)).toBe(false);
    const json = await run(['report', ...common, '--site', 'store-9999', '--html', html, '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ ok: false, error: 'usage' });
  });

  it('exits 3 naming the path when the page cannot be written there', async () => {
    for (const [file, why] of [
      [join(work, 'no-such-dir', 'r.html'), 'its directory does not exist'],
      [work, 'it is a directory'],
      [join(work, 'cli', 'fleet.html', 'r.html'), 'a part of the path is a file, not a directory'],
    ] as const) {
      const r = await run(['report', '--catalogue', catalogue, '--out', out, '--secrets', secrets, '--html', file]);
      expect(r.code, r.err).toBe(3);
      expect(r.err).toBe(`edgeimg: cannot write the report to ${file}: ${why}\n`);
    }
  });

  it('exits 1 on an invalid catalogue, and prints its help', async () => {
    const c = copyCatalogue();
    try {
      c.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('profile: store-ha3', 'profile: no-such-profile'));
      const r = await run(['report', '--catalogue', c.catalogue, '--out', out, '--html', join(c.root, 'r.html')]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/store-0412\.yaml:\d+:\d+: .*no-such-profile/);
      expect(existsSync(join(c.root, 'r.html'))).toBe(false);
    } finally {
      c.cleanup();
    }
    const help = await run(['report', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^edgeimg report: write a static HTML fleet report/);
    expect((await run(['help'])).out).toContain('edgeimg report [--site ID ... | --all] --html FILE');
  });
});
