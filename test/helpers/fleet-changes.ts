// One hand-made history of catalogue changes, each with the sites whose build inputs it
// changes. Used twice: incremental builds must rebuild exactly these sites (and keep bytes
// identical to a clean build), and `edgeimg affected` must list exactly these sites between
// the commit before and the commit after (test/fleet/).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { planFleet } from '../../src/catalogue/index.js';
import { imageNeeds } from '../../src/images/assets.js';
import type { CatalogueCopy } from './catalogue.js';

/** Six sites: the example four plus one more on each store profile. */
export const SITES = ['lab-0001', 'plant-0031', 'store-0007', 'store-0008', 'store-0412', 'store-0413'];
const TALOS = ['store-0007', 'store-0008', 'store-0412', 'store-0413'];

export function addStoreSites(c: CatalogueCopy): void {
  c.write(
    'catalogue/sites/store-0413.yaml',
    'apiVersion: edgeimg.dev/v1alpha1\nkind: Site\nmetadata:\n  name: store-0413\n  labels: { country: de, region: eu-central, tier: silver }\nspec:\n  profile: store-ha3\n  subnet: 10.4.13.0/24\n  nodes:\n    - { name: cp-1, mac: "52:54:00:04:13:11" }\n    - { name: cp-2, mac: "52:54:00:04:13:12" }\n    - { name: cp-3, mac: "52:54:00:04:13:13" }\n',
  );
  c.write(
    'catalogue/sites/store-0008.yaml',
    'apiVersion: edgeimg.dev/v1alpha1\nkind: Site\nmetadata:\n  name: store-0008\n  labels: { country: at, region: eu-central, tier: bronze }\nspec:\n  profile: store-single\n  subnet: 10.0.8.0/24\n  nodes:\n    - { name: cp-1, mac: "00:e0:4c:00:08:11" }\n',
  );
}

export interface FleetChange {
  name: string;
  apply(c: CatalogueCopy): Promise<void> | void;
  /** Sites whose inputs change (sorted). */
  sites: string[];
  /** Sites that disappear. */
  removed?: string[];
}

export const CHANGES: FleetChange[] = [
  {
    name: 'comments and layout only (fleet, hardware class, profile, site, overlay)',
    apply(c) {
      c.edit('catalogue/fleet.yaml', (t) => `# owned by the platform team\n${t.replace('  ntp: [time.cloudflare.com, pool.ntp.org]', '  ntp:   [ time.cloudflare.com,   pool.ntp.org ]   # two pools')}`);
      c.edit('catalogue/hardware/nuc12-amd64.yaml', (t) => `${t}# end of file\n`);
      c.edit('catalogue/profiles/store-single.yaml', (t) => `${t}\n\n# spare line\n`);
      c.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('labels: { country: de, region: eu-central, tier: gold }', 'labels:\n    country: de   # Germany\n    region: eu-central\n    tier: gold'));
      c.edit('overlays/site-kairos-journald.yaml', (t) => `${t}# reviewed 2026-11\n`);
    },
    sites: [],
  },
  {
    name: "one store's file",
    apply: (c) => c.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('tier: gold', 'tier: platinum')),
    sites: ['store-0412'],
  },
  {
    name: 'a hardware class',
    apply: (c) => c.edit('catalogue/hardware/nuc12-amd64.yaml', (t) => t.replace('extraKernelArgs: [net.ifnames=0]', 'extraKernelArgs: [net.ifnames=0, console=ttyS0]')),
    sites: ['store-0412', 'store-0413'],
  },
  {
    name: 'a site profile',
    apply: (c) => c.edit('catalogue/profiles/store-single.yaml', (t) => t.replace('mirror: { offset: 5, port: 5000, scheme: https }', 'mirror: { offset: 6, port: 5000, scheme: https }')),
    sites: ['store-0007', 'store-0008'],
  },
  {
    name: 'an overlay a site uses',
    apply: (c) => c.edit('overlays/site-kairos-journald.yaml', (t) => t.replace(/SystemMaxUse=\S+/, 'SystemMaxUse=64M')),
    sites: ['plant-0031'],
  },
  {
    name: 'a fleet-level overlay for Talos 1.13',
    apply: (c) => c.edit('overlays/fleet-talos-hardening.yaml', (t) => t.replace('net.core.somaxconn: "4096"', 'net.core.somaxconn: "8192"')),
    sites: TALOS,
  },
  {
    name: 'the class boot image pin of one hardware class',
    async apply(c) {
      const { plans } = await planFleet(c.catalogue);
      const need = imageNeeds(plans).find((n) => n.hardwareClass === 'legacy-amd64')!;
      const asset = need.assets.find((a) => a.use === 'boot')!.path;
      const lock = JSON.parse(readFileSync(c.path('catalogue/images.lock'), 'utf8'));
      lock.assets[asset] = { sha256: 'a'.repeat(64), size: 123456 };
      writeFileSync(c.path('catalogue/images.lock'), `${JSON.stringify(lock, null, 2)}\n`);
    },
    sites: ['store-0007', 'store-0008'],
  },
  {
    name: 'fleet defaults (NTP servers)',
    apply: (c) => c.edit('catalogue/fleet.yaml', (t) => t.replace(/ntp: +\[ time.cloudflare.com, +pool.ntp.org \]/, 'ntp: [time.cloudflare.com, 1.pool.ntp.org]')),
    sites: SITES,
  },
  {
    name: 'a new site',
    apply: (c) =>
      c.write(
        'catalogue/sites/store-0500.yaml',
        'apiVersion: edgeimg.dev/v1alpha1\nkind: Site\nmetadata:\n  name: store-0500\n  labels: { country: fr, region: eu-west, tier: gold }\nspec:\n  profile: store-single\n  subnet: 10.5.0.0/24\n  nodes:\n    - { name: cp-1, mac: "00:e0:4c:00:50:11" }\n',
      ),
    sites: ['store-0500'],
  },
  {
    name: 'a site removed',
    apply: (c) => rmSync(c.path('catalogue/sites/store-0008.yaml')),
    sites: [],
    removed: ['store-0008'],
  },
];
