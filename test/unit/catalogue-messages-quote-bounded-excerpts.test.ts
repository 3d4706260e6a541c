// A diagnostic quotes at most a bounded excerpt of a user value (80 characters, then "…"),
// with control characters escaped, so a huge or hostile value can neither flood the output nor
// forge extra FILE:LINE:COL lines.
import { afterEach, describe, expect, it } from 'vitest';
import { planFleet } from '../../src/catalogue/index.js';
import { CatalogueError, formatDiagnostic, type Diagnostic } from '../../src/util/diagnostics.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';

let copy: CatalogueCopy | undefined;
afterEach(() => {
  copy?.cleanup();
  copy = undefined;
});

async function errorsOf(c: CatalogueCopy, strict = false): Promise<Diagnostic[]> {
  try {
    await planFleet(c.catalogue, { strict });
  } catch (err) {
    if (err instanceof CatalogueError) return err.diagnostics;
    throw err;
  }
  throw new Error('expected the catalogue to be rejected');
}

const LONG = 'z'.repeat(100_000);
/** The longest run of one value's characters a message may hold. */
const MAX_RUN = 80;

function expectBounded(diags: Diagnostic[], pattern: RegExp): Diagnostic {
  const hit = diags.find((d) => pattern.test(d.message));
  expect(hit, `no ${pattern}; got:\n${diags.map(formatDiagnostic).join('\n').slice(0, 4000)}`).toBeDefined();
  const run = Math.max(...(hit!.message.match(/z+/g) ?? ['']).map((m) => m.length));
  expect(run).toBeLessThanOrEqual(MAX_RUN);
  expect(hit!.message).toContain('…');
  return hit!;
}

describe('catalogue messages quote bounded excerpts', () => {
  it('cuts a value that fails a pattern', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('mac: "52:54:00:04:12:12"', `mac: "${LONG}"`));
    expectBounded(await errorsOf(copy), /nodes\[1\]\.mac has an invalid value "z+…"/);
  });

  it('cuts an unknown key', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('  subnet: 10.4.12.0/24', `  ${'z'.repeat(1000)}: 1\n  subnet: 10.4.12.0/24`));
    expectBounded(await errorsOf(copy), /^unknown key "z+…" in spec/);
  });

  it('quotes an invalid label name, not the whole label mapping', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('labels: {', `labels: { -${'z'.repeat(1000)}: x, other: ${LONG.slice(0, 5000)},`));
    const d = expectBounded(await errorsOf(copy), /metadata\.labels key "-z+…" is invalid/);
    expect(d.message.length).toBeLessThan(300);
  });

  it('cuts an overlay path and a registry endpoint', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('../../overlays/node-cp1-extra-sans.yaml', LONG));
    copy.edit('catalogue/fleet.yaml', (t) => t.replace('docker.io: ["${site.mirror}"', `docker.io: ["ftp://${LONG}"`));
    const diags = await errorsOf(copy);
    expectBounded(diags, /^overlay file (not found: )?z+…/);
    expectBounded(diags, /^registry endpoint "ftp:\/\/z+…" must be an http\(s\) URL/);
  });

  it('cuts the subnet a site gives and escapes control characters', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0007.yaml', (t) => t.replace('subnet: 10.0.7.0/24', `subnet: "1${'0'.repeat(5000)}/24"`));
    copy.edit('catalogue/sites/lab-0001.yaml', (t) => t.replace(/mac: "[^"]+"/, 'mac: "\\n/etc/passwd:1:1: forged\\u001b[31m"'));
    const diags = await errorsOf(copy);
    const subnet = diags.find((d) => /subnet/.test(d.message) && d.file.endsWith('store-0007.yaml'))!;
    expect(subnet.message.length).toBeLessThan(300);
    const forged = diags.find((d) => d.file.endsWith('lab-0001.yaml') && /mac/.test(d.message))!;
    expect(forged.message).toContain('\\n/etc/passwd:1:1: forged\\u001b[31m');
    for (const d of diags) expect(formatDiagnostic(d)).not.toMatch(/[\n\u001b]/);
  });

  it('keeps every message of a catalogue full of huge values short', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/hardware/nuc12-amd64.yaml', (t) => t.replace('path: /dev/nvme0n1', `path: /dev/sd${LONG}`).replace('driver: igc', `driver: ${LONG}`));
    copy.edit('catalogue/sites/plant-0031.yaml', (t) => t.replace('profile: plant-k3s', `profile: ${LONG}`));
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('{ name: cp-2, mac: "52:54:00:04:12:12" }', '{ name: cp-2 }'));
    const diags = await errorsOf(copy, true);
    expectBounded(diags, /install disk \/dev\/sdz+… can name a USB stick/);
    expectBounded(diags, /selects its NIC by selector \(driver z+…\)/);
    expectBounded(diags, /^spec\.profile has an invalid value "z+…"/);
    for (const d of diags) expect(d.message.length, d.message.slice(0, 300)).toBeLessThan(600);
  });
});
