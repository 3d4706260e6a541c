import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { planFleet } from '../../src/catalogue/index.js';
import { type Diagnostic } from '../../src/util/diagnostics.js';
import { copyCatalogue, errorsOf, repoRoot, type CatalogueCopy } from '../helpers/catalogue.js';
import { join } from 'node:path';

let copy: CatalogueCopy | undefined;
afterEach(() => {
  copy?.cleanup();
  copy = undefined;
});


/** 1-based line of the first line containing `needle`, and the column where it starts. */
function locate(c: CatalogueCopy, rel: string, needle: string): { line: number; col: number } {
  const lines = readFileSync(c.path(rel), 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`${needle} not in ${rel}`);
  return { line: i + 1, col: lines[i]!.indexOf(needle) + 1 };
}

function expectError(diags: Diagnostic[], rel: string, line: number, pattern: RegExp, col?: number): void {
  const hit = diags.find((d) => d.file.endsWith(rel) && d.line === line && pattern.test(d.message) && (col === undefined || d.col === col));
  expect(hit, `no ${pattern} at ${rel}:${line}${col ? `:${col}` : ''}; got:\n${diags.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`).join('\n')}`).toBeDefined();
}

describe('example catalogue', () => {
  it('is valid and resolves every contract site', async () => {
    const { plans } = await planFleet(join(repoRoot, 'catalogue'));
    const byId = Object.fromEntries(plans.map((p) => [p.id, p]));
    expect(Object.keys(byId).sort()).toEqual(['lab-0001', 'plant-0031', 'store-0007', 'store-0412']);
    expect(byId['store-0412']!.os).toBe('talos');
    expect(byId['store-0412']!.talos!.version).toMatch(/^v1\.13\./);
    expect(byId['store-0412']!.nodes.map((n) => n.role)).toEqual(['controlplane', 'controlplane', 'controlplane']);
    expect(byId['store-0412']!.cluster.endpoint).toBe('https://10.4.12.10:6443');
    expect(byId['store-0412']!.nodes[0]!.hardware).toMatchObject({ arch: 'amd64', firmware: 'uefi', disk: { path: '/dev/nvme0n1' } });
    expect(byId['store-0007']!.nodes).toHaveLength(1);
    expect(byId['store-0007']!.nodes[0]!.hardware).toMatchObject({ firmware: 'bios', disk: { selector: { busPath: '/pci0000:00/0000:00:1f.2/*' } } });
    expect(byId['store-0007']!.cluster.allowSchedulingOnControlPlanes).toBe(true);
    expect(byId['plant-0031']!.kairos!.provider).toBe('k3s');
    expect(byId['plant-0031']!.nodes.map((n) => n.role)).toEqual(['controlplane', 'worker', 'worker']);
    expect(byId['lab-0001']!.kairos!.provider).toBe('k0s');
    expect(byId['lab-0001']!.nodes[0]!.hardware.arch).toBe('arm64');
  });

  it('layers overlays fleet, hardware, site, node in that order and filters them by OS', async () => {
    const { plans } = await planFleet(join(repoRoot, 'catalogue'));
    const cp1 = plans.find((p) => p.id === 'store-0412')!.nodes[0]!;
    expect(cp1.overlays.map((o) => `${o.level}:${o.display.split('/').pop()}`)).toEqual([
      'fleet:fleet-talos-hardening.yaml',
      'node:node-cp1-extra-sans.yaml',
    ]);
    const plant = plans.find((p) => p.id === 'plant-0031')!;
    expect(plant.nodes[0]!.overlays.map((o) => o.level)).toEqual(['site']); // the Talos-only fleet overlay is filtered out
  });

  it('substitutes the site mirror into registry endpoints, in order', async () => {
    const { plans } = await planFleet(join(repoRoot, 'catalogue'));
    const p = plans.find((x) => x.id === 'store-0412')!;
    // the fleet lists the upstream last; containerd falls back to it anyway, so it is dropped
    expect(p.registries.mirrors.find((m) => m.registry === 'docker.io')).toEqual({ registry: 'docker.io', endpoints: ['https://10.4.12.5:5000'], fallback: true });
    expect(p.registries.tlsHosts).toEqual(['10.4.12.5:5000']);
    expect(p.registries.caBundle).toContain('BEGIN CERTIFICATE');
  });
});

describe('broken catalogues fail with FILE:LINE:COL', () => {
  it('reports a YAML syntax error at its line', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0007.yaml', (t) => t.replace('subnet: 10.0.7.0/24', 'subnet: [10.0.7.0/24'));
    const diags = await errorsOf(copy);
    expect(diags.some((d) => d.file.endsWith('sites/store-0007.yaml') && /YAML syntax error/.test(d.message))).toBe(true);
  });

  it('reports an unknown key at the key, with a suggestion', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('{ name: cp-2, mac:', '{ name: cp-2, macc:'));
    const at = locate(copy, 'catalogue/sites/store-0412.yaml', 'macc:');
    expectError(await errorsOf(copy), 'sites/store-0412.yaml', at.line, /unknown key "macc".*did you mean "mac"/, at.col);
  });

  it('reports a mistyped value', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/profiles/store-ha3.yaml', (t) => t.replace('offset: 12 }', 'offset: twelve }'));
    const at = locate(copy, 'catalogue/profiles/store-ha3.yaml', 'twelve');
    expectError(await errorsOf(copy), 'profiles/store-ha3.yaml', at.line, /offset must be an integer/, at.col);
  });

  it('reports an unknown hardware class and an unknown profile', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/profiles/store-single.yaml', (t) => t.replace('hardwareClass: legacy-amd64', 'hardwareClass: legacy-amd65'));
    copy.edit('catalogue/sites/plant-0031.yaml', (t) => t.replace('profile: plant-k3s', 'profile: plant-k9s'));
    const diags = await errorsOf(copy);
    expectError(diags, 'profiles/store-single.yaml', locate(copy, 'catalogue/profiles/store-single.yaml', 'legacy-amd65').line, /unknown hardware class "legacy-amd65"/);
    expectError(diags, 'sites/plant-0031.yaml', locate(copy, 'catalogue/sites/plant-0031.yaml', 'plant-k9s').line, /unknown site profile "plant-k9s"/);
  });

  it('reports duplicate site ids', async () => {
    copy = copyCatalogue();
    copy.write('catalogue/sites/store-0412-again.yaml', readFileSync(copy.path('catalogue/sites/store-0007.yaml'), 'utf8').replace('name: store-0007', 'name: store-0412'));
    const at = locate(copy, 'catalogue/sites/store-0412.yaml', 'name: store-0412');
    const again = locate(copy, 'catalogue/sites/store-0412-again.yaml', 'name: store-0412');
    const diags = await errorsOf(copy);
    // files load in sorted order, so the copy is the second definition
    expectError(diags, 'sites/store-0412.yaml', at.line, /duplicate site id "store-0412"; first defined at .*store-0412-again.yaml/);
    expect(again.line).toBeGreaterThan(0);
  });

  it('reports duplicate node names, MACs and addresses across the fleet', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('{ name: cp-3, mac: "52:54:00:04:12:13" }', '{ name: cp-3, mac: "52:54:00:04:12:13" }\n    - { name: cp-3, role: worker, offset: 40 }'));
    copy.edit('catalogue/sites/store-0007.yaml', (t) =>
      t.replace('subnet: 10.0.7.0/24', 'subnet: 10.4.12.0/24').replace('{ name: cp-1, mac: "00:e0:4c:00:07:11" }', '{ name: cp-1, mac: "52:54:00:04:12:12", hostname: store-0412-cp-3 }'),
    );
    const diags = await errorsOf(copy);
    expectError(diags, 'sites/store-0412.yaml', locate(copy, 'catalogue/sites/store-0412.yaml', 'role: worker, offset: 40').line, /duplicate node name "cp-3"/);
    // sites resolve in id order, so store-0412 is the second holder; the message points at both
    const s7 = locate(copy, 'catalogue/sites/store-0007.yaml', 'hostname: store-0412-cp-3').line;
    const rel = 'catalogue/sites/store-0412.yaml';
    expectError(diags, 'sites/store-0412.yaml', locate(copy, rel, 'name: cp-2').line, new RegExp(`duplicate MAC 52:54:00:04:12:12: .*store-0007.yaml:${s7}:`));
    expectError(diags, 'sites/store-0412.yaml', locate(copy, rel, 'name: cp-3').line, /duplicate node name store-0412-cp-3/);
    expectError(diags, 'sites/store-0412.yaml', locate(copy, rel, 'name: cp-1').line, /duplicate address 10\.4\.12\.11/);
  });

  it('reports addresses and gateways outside the site subnet', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/lab-0001.yaml', (t) => t.replace('gateway: 192.168.50.1', 'gateway: 192.168.51.1').replace('address: 192.168.50.11', 'address: 192.168.60.11'));
    const diags = await errorsOf(copy);
    const rel = 'catalogue/sites/lab-0001.yaml';
    expectError(diags, 'sites/lab-0001.yaml', locate(copy, rel, 'gateway: 192.168.51.1').line, /gateway 192\.168\.51\.1 is outside the site subnet 192\.168\.50\.0\/24/);
    expectError(diags, 'sites/lab-0001.yaml', locate(copy, rel, '192.168.60.11').line, /address 192\.168\.60\.11 is outside the site subnet/, locate(copy, rel, '192.168.60.11').col);
  });

  it('reports a VIP that collides with a node', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/profiles/plant-k3s.yaml', (t) => t.replace('vipOffset: 10', 'vipOffset: 21'));
    const at = locate(copy, 'catalogue/profiles/plant-k3s.yaml', 'vipOffset: 21');
    expectError(await errorsOf(copy), 'profiles/plant-k3s.yaml', at.line, /VIP 10\.31\.0\.21 collides with node agent-1/);
  });

  it('reports a Talos site without control planes', async () => {
    copy = copyCatalogue();
    copy.write(
      'catalogue/sites/store-0999.yaml',
      ['apiVersion: edgeimg.dev/v1alpha1', 'kind: Site', 'metadata:', '  name: store-0999', 'spec:', '  subnet: 10.9.99.0/24', '  gateway: 10.9.99.1',
        '  nodes:', '    - { name: w-1, role: worker, hardwareClass: nuc12-amd64, offset: 21 }', ''].join('\n'),
    );
    expectError(await errorsOf(copy), 'sites/store-0999.yaml', 4, /Talos site store-0999 has no control plane/);
  });

  it('rejects an alias bomb quickly, without expanding it', async () => {
    copy = copyCatalogue();
    const rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    const names = 'abcdefghi';
    for (let i = 1; i < names.length; i++) rows.push(`${names[i]}: &${names[i]} [${Array(9).fill(`*${names[i - 1]}`).join(',')}]`);
    copy.write('catalogue/sites/bomb.yaml', `${rows.join('\n')}\n`);
    const heapBefore = process.memoryUsage().heapUsed;
    expectError(await errorsOf(copy), 'sites/bomb.yaml', 1, /alias bomb/);
    // 9^9 strings would need gigabytes; the rejection must not have materialised them
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * 1024 * 1024);
  });

  it('reports every error of a run at once, sorted by file and line', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('{ name: cp-2, mac:', '{ name: cp-2, macc:'));
    copy.edit('catalogue/profiles/store-single.yaml', (t) => t.replace('hardwareClass: legacy-amd64', 'hardwareClass: nope'));
    copy.edit('catalogue/sites/lab-0001.yaml', (t) => t.replace('gateway: 192.168.50.1', 'gateway: 192.168.51.1'));
    const diags = await errorsOf(copy);
    const files = new Set(diags.map((d) => d.file.split('/').slice(-2).join('/')));
    expect(files).toEqual(new Set(['sites/store-0412.yaml', 'profiles/store-single.yaml', 'sites/lab-0001.yaml']));
    const keys = diags.map((d) => `${d.file}\0${String(d.line).padStart(6, '0')}`);
    expect(keys).toEqual([...keys].sort());
  });

  it('reports a missing overlay file at the reference', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('node-cp1-extra-sans.yaml', 'node-cp1-missing.yaml'));
    const at = locate(copy, 'catalogue/sites/store-0412.yaml', 'node-cp1-missing.yaml');
    expectError(await errorsOf(copy), 'sites/store-0412.yaml', at.line, /overlay file not found: \.\.\/\.\.\/overlays\/node-cp1-missing\.yaml/);
  });
});
