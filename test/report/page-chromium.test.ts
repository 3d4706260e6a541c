// The report page in a real browser (Debian's headless Chromium) for a 3,400-site fleet: every
// row renders, the inline filter script honours filters given in the address (#q=…, ?q=…,
// #verify=fail&country=fr, …) by hiding rows, and the page loads fast. The page's size and
// load time are printed; screenshots go to $EDGEIMG_SCREENSHOT_DIR (default: the temp dir).
//
// Outputs are synthesized (test/report/fleet-fixture.ts) rather than built: building 3,400
// sites takes ~40 s and is not what this test is about; the catalogue is real.

import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetReport, writeReportFile } from '../../src/report/index.js';
import { findChromium, groupsOf, rowsOf, runChromium } from './chromium.js';
import { makeFleet, type Fleet } from './fleet-fixture.js';

const SITES = 3400;
const chromium = findChromium();

let fleet: Fleet;
let page: string;
let generateMs = 0;

beforeAll(async () => {
  fleet = await makeFleet(SITES);
  const t0 = performance.now();
  const r = await fleetReport({ catalogueDir: fleet.catalogue, outDir: fleet.out, secretsDir: fleet.secrets, now: fleet.asOf, env: {} });
  generateMs = performance.now() - t0;
  page = join(fleet.root, 'report.html');
  await writeReportFile(page, r.html);
}, 300_000);
afterAll(() => fleet?.cleanup());

const url = (suffix = ''): string => `file://${page}${suffix}`;
const screenshotDir = (): string => process.env['EDGEIMG_SCREENSHOT_DIR'] ?? fleet.root;

async function dump(suffix: string): Promise<string> {
  return (await runChromium(chromium!, join(fleet.root, 'chrome-dump'), ['--virtual-time-budget=5000', '--dump-dom', url(suffix)])).stdout;
}

function visible(dom: string): string[] {
  return rowsOf(dom)
    .filter((r) => !r.hidden)
    .map((r) => r.site);
}

describe.skipIf(!chromium)(`fleet report page, ${SITES} sites, in headless Chromium`, () => {
  it('renders one row per site, every one visible without a filter, and loads fast', async () => {
    const bytes = statSync(page).size;
    // Load time inside the browser: a wrapper page frames the report and reads its navigation
    // timing after forcing layout; no virtual time, so these are real milliseconds.
    const wrapper = join(fleet.root, 'timing.html');
    writeFileSync(
      wrapper,
      `<!doctype html><meta charset="utf-8"><pre id="t">pending</pre><iframe id="f" src="report.html" style="width:1400px;height:900px"></iframe><script>
document.getElementById('f').addEventListener('load', function () {
  var w = this.contentWindow, d = w.document, nav = w.performance.getEntriesByType('navigation')[0];
  void d.body.offsetHeight;
  var laidOut = w.performance.now();
  document.getElementById('t').textContent = JSON.stringify({ domInteractive: nav.domInteractive, domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, laidOut: laidOut, rows: d.querySelectorAll('#sites tr[data-c]').length, shown: d.getElementById('shown').textContent });
});
</script>`,
    );
    const timing = await runChromium(chromium!, join(fleet.root, 'chrome-timing'), ['--allow-file-access-from-files', '--dump-dom', `file://${wrapper}`]);
    const t = JSON.parse(/<pre id="t">([^<]*)<\/pre>/.exec(timing.stdout)![1]!.replace(/&quot;/g, '"')) as Record<string, number | string>;
    const blank = join(fleet.root, 'blank.html');
    writeFileSync(blank, '<!doctype html><title>blank</title><p>blank</p>');
    const base = await runChromium(chromium!, join(fleet.root, 'chrome-blank'), ['--dump-dom', `file://${blank}`]);
    const full = await runChromium(chromium!, join(fleet.root, 'chrome-full'), ['--dump-dom', url()]);
    console.log(
      `report page, ${SITES} sites: ${bytes} bytes (${(bytes / 1024 / 1024).toFixed(2)} MiB), generated in ${generateMs.toFixed(0)} ms; ` +
        `in Chromium: DOMContentLoaded ${Number(t['domContentLoaded']).toFixed(0)} ms, load ${Number(t['load']).toFixed(0)} ms, laid out ${Number(t['laidOut']).toFixed(0)} ms; ` +
        `headless --dump-dom wall time ${full.ms.toFixed(0)} ms (a blank page: ${base.ms.toFixed(0)} ms)`,
    );
    expect(t['rows']).toBe(SITES);
    expect(t['shown']).toBe('all 3,400 sites');
    const rows = rowsOf(full.stdout);
    expect(rows).toHaveLength(SITES);
    expect(rows.filter((r) => r.hidden)).toHaveLength(0);
    expect(new Set(rows.map((r) => r.site)).size).toBe(SITES);
    // lean: one row per site and no per-node rows; well under a megabyte per thousand sites
    expect(full.stdout.match(/<tr/g)!.length).toBeLessThan(SITES + 200);
    expect(bytes).toBeLessThan(SITES * 700);
    // generous bounds for a loaded 2-core CI machine; typical figures are printed above
    expect(Number(t['laidOut'])).toBeLessThan(15_000);
  }, 300_000);

  it('shows only the site searched for with #q=', async () => {
    const dom = await dump('#q=store-0412');
    expect(visible(dom)).toEqual(['store-0412']);
    expect(dom).toContain('<span id="shown">1 of 3,400 sites</span>');
    expect(dom).toMatch(/<input type="search" id="q"[^>]*>/);
    // the other groups are hidden whole, so no empty group headers remain
    const groups = groupsOf(dom);
    expect(groups.length).toBeGreaterThan(5);
    expect(groups.filter((g) => !g.hidden)).toHaveLength(1);
    // its header counts what is shown of the group
    expect(groups.find((g) => !g.hidden)!.html).toMatch(/<h3>us · us-east<small>1 of [0-9,]+ sites<\/small><\/h3>/);
  }, 120_000);

  it('combines filters from the hash: failed verify results in one country', async () => {
    const dom = await dump('#verify=fail&country=fr');
    const want = fleet.sites.filter((s) => s.verify === 'fail' && s.country === 'fr').map((s) => s.id);
    expect(want.length).toBeGreaterThan(0);
    expect(visible(dom).sort()).toEqual(want.sort());
  }, 120_000);

  it('honours query parameters, an OS prefix and the certificate filter', async () => {
    const kairos = visible(await dump('?q=kairos'));
    expect(kairos.sort()).toEqual(fleet.sites.filter((s) => s.os === 'kairos').map((s) => s.id).sort());
    const talos = visible(await dump('#os=talos&tier=gold'));
    expect(talos.sort()).toEqual(fleet.sites.filter((s) => s.os === 'talos' && s.tier === 'gold').map((s) => s.id).sort());
    const critical = visible(await dump('#cert=critical'));
    expect(critical.sort()).toEqual(fleet.sites.filter((s) => s.certDays !== undefined && s.certDays < 7).map((s) => s.id).sort());
    const stale = visible(await dump('#verify=stale&q=bronze%20eu-south'));
    expect(stale.sort()).toEqual(fleet.sites.filter((s) => s.verify === 'stale' && s.tier === 'bronze' && s.region === 'eu-south').map((s) => s.id).sort());
  }, 240_000);

  it('takes screenshots of the whole fleet and of a filtered view', async () => {
    const dir = screenshotDir();
    mkdirSync(dir, { recursive: true });
    for (const [name, suffix] of [
      ['report-3400.png', ''],
      ['report-3400-filtered.png', '#verify=fail&region=eu-central'],
    ] as const) {
      const png = join(dir, name);
      await runChromium(chromium!, join(fleet.root, 'chrome-shot'), ['--window-size=1400,1000', '--virtual-time-budget=5000', `--screenshot=${png}`, url(suffix)]);
      expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
      expect(statSync(png).size).toBeGreaterThan(30_000); // a blank page is a few KB
    }
  }, 240_000);
});
