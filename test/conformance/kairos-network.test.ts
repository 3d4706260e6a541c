// Conformance: how installed Kairos v3.5.1 names NICs and picks a .network file, and which
// flavors read the files we write.
//
// - kairos-io/kairos-init v0.5.16 pkg/bundled/bundled.go, BootArgsCfg (grub setKernelCmd):
//   every installed boot has net.ifnames=1, so NICs get predictable names (enp1s0), never eth0.
// - kairos-init v0.5.16 pkg/bundled/cloudconfigs/05_network.yaml: Kairos writes
//   /etc/systemd/network/20-dhcp.network (Name=en*, DHCP) in rootfs.before and initramfs.
// - systemd.network(5): networkd applies the first file, in lexical order, that matches a link.
// - kairos-init v0.5.16 pkg/values/packagemaps.go and pkg/stages/steps_init.go: Red Hat family
//   images run NetworkManager (and chronyd); SUSE masks wicked and runs systemd-networkd.

import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderKairosCloudConfig } from '../../src/render/kairos/index.js';
import { NETWORKD_FILE } from '../../src/render/kairos/network.js';
import { kairosSecrets } from '../fixtures/kairos-secrets.js';
import { k3sSite } from '../fixtures/plans.js';
import { copyCatalogue } from '../helpers/catalogue.js';
import { planFleet } from '../../src/catalogue/index.js';
import { CatalogueError } from '../../src/util/diagnostics.js';
import { exampleNodes } from './helpers.js';
import { KAIROS_DEFAULT_NETWORK_FILES, networkdFileFor, parseMatch } from './models/kairos.js';

describe('Kairos predictable NIC names', () => {
  it('every example Kairos node\'s static address applies to its NIC under a predictable name', async () => {
    for (const { site, node, rendered } of await exampleNodes((s) => s.os === 'kairos')) {
      const cfg = parseYaml(rendered.userData, { version: '1.1' }) as Record<string, any>;
      const ours = Object.values(cfg.stages).flat().flatMap((s: any) => s.files ?? []).find((f: any) => f.path === NETWORKD_FILE);
      expect(ours, `${site.id}/${node.name}`).toBeDefined();
      const files = [...KAIROS_DEFAULT_NETWORK_FILES, { name: NETWORKD_FILE.split('/').pop()!, match: parseMatch(ours.content) }];
      const link = { name: 'enp1s0', mac: node.mac! };
      expect(networkdFileFor(files, link), `${site.id}/${node.name}`).toBe('00-edgeimg-primary.network');
      // and not some other port of the same board
      expect(networkdFileFor(files, { name: 'enp2s0', mac: '02:00:00:00:00:01' })).toBe('20-dhcp.network');
    }
  });

  it('validation refuses a Kairos node on an eth0-named class without a MAC, at the node\'s line', async () => {
    const copy = copyCatalogue();
    try {
      copy.edit('catalogue/sites/plant-0031.yaml', (t) => t.replace('- { name: agent-2, mac: "a0:36:9f:31:00:22" }', '- { name: agent-2 }'));
      const err = await planFleet(copy.catalogue).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(CatalogueError);
      const d = (err as CatalogueError).diagnostics.find((x) => /agent-2/.test(x.message))!;
      expect(d.file).toMatch(/sites\/plant-0031\.yaml$/);
      expect(d.message).toMatch(/needs a mac: installed Kairos boots with predictable interface names/);
    } finally {
      copy.cleanup();
    }
  });

  it('refuses Red Hat family flavors, whose NetworkManager ignores networkd files', () => {
    const site = structuredClone(k3sSite);
    site.kairos!.flavor = 'rockylinux-9';
    expect(() => renderKairosCloudConfig(site, site.nodes[0]!, kairosSecrets)).toThrow(/NetworkManager and chronyd/);
  });
});
