// A node's hostname is one DNS label of at most 63 characters: an explicit one by the schema,
// the default `<site>-<node>` (two labels of up to 63 each, joined) by resolution, reported at
// the node's line.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { planFleet } from '../../src/catalogue/index.js';
import { formatDiagnostic, type Diagnostic } from '../../src/util/diagnostics.js';
import { copyCatalogue, errorsOf, type CatalogueCopy } from '../helpers/catalogue.js';

let copy: CatalogueCopy | undefined;
afterEach(() => {
  copy?.cleanup();
  copy = undefined;
});


const SITE = `store-${'a'.repeat(40)}`; // 46 characters
const REL = 'catalogue/sites/long.yaml';

function writeSite(c: CatalogueCopy, node: string): void {
  c.write(
    REL,
    ['apiVersion: edgeimg.dev/v1alpha1', 'kind: Site', 'metadata:', `  name: ${SITE}`, 'spec:', '  subnet: 10.77.0.0/24', '  gateway: 10.77.0.1', '  mirror: https://10.77.0.5:5000', '  nodes:',
      `    - ${node}`, ''].join('\n'),
  );
}

const NODE_LINE = 10;

function expectError(diags: Diagnostic[], line: number, pattern: RegExp): void {
  const hit = diags.find((d) => d.file.endsWith('sites/long.yaml') && d.line === line && pattern.test(d.message));
  expect(hit, `no ${pattern} at line ${line}; got:\n${diags.map(formatDiagnostic).join('\n')}`).toBeDefined();
}

describe('hostnames', () => {
  it('refuses a default hostname over 63 characters at the node', async () => {
    copy = copyCatalogue();
    const name = `cp-${'b'.repeat(17)}`; // 46 + 1 + 20 = 67 characters
    writeSite(copy, `{ name: ${name}, role: controlplane, hardwareClass: nuc12-amd64, offset: 11, mac: "02:00:00:77:00:11" }`);
    const col = readFileSync(copy.path(REL), 'utf8').split('\n')[NODE_LINE - 1]!.indexOf(name) + 1;
    const diags = await errorsOf(copy);
    expectError(diags, NODE_LINE, new RegExp(`node "${name}" has the default hostname ${SITE}-${name} .*67 characters; a hostname is one DNS label of at most 63`));
    expect(diags.find((d) => /default hostname/.test(d.message))!.col).toBe(col);
  });

  it('accepts a default hostname of exactly 63 characters', async () => {
    copy = copyCatalogue();
    const name = `cp-${'b'.repeat(13)}`; // 46 + 1 + 16 = 63
    writeSite(copy, `{ name: ${name}, role: controlplane, hardwareClass: nuc12-amd64, offset: 11, mac: "02:00:00:77:00:11" }`);
    const { plans } = await planFleet(copy.catalogue);
    expect(plans.find((p) => p.id === SITE)!.nodes[0]!.hostname).toHaveLength(63);
  });

  it('accepts a long site and node name when an explicit hostname is short', async () => {
    copy = copyCatalogue();
    writeSite(copy, `{ name: cp-${'b'.repeat(30)}, hostname: s77-cp1, role: controlplane, hardwareClass: nuc12-amd64, offset: 11, mac: "02:00:00:77:00:11" }`);
    const { plans } = await planFleet(copy.catalogue);
    expect(plans.find((p) => p.id === SITE)!.nodes[0]!.hostname).toBe('s77-cp1');
  });

  it('refuses an explicit hostname over 63 characters or not a DNS label', async () => {
    copy = copyCatalogue();
    writeSite(copy, `{ name: cp-1, hostname: ${'h'.repeat(64)}, role: controlplane, hardwareClass: nuc12-amd64, offset: 11, mac: "02:00:00:77:00:11" }`);
    expectError(await errorsOf(copy), NODE_LINE, /nodes\[0\]\.hostname has an invalid value "h+" \(expected DNS label/);
    copy.cleanup();
    copy = copyCatalogue();
    writeSite(copy, '{ name: cp-1, hostname: Store_1.example, role: controlplane, hardwareClass: nuc12-amd64, offset: 11, mac: "02:00:00:77:00:11" }');
    expectError(await errorsOf(copy), NODE_LINE, /nodes\[0\]\.hostname has an invalid value "Store_1\.example" \(expected DNS label/);
  });
});
