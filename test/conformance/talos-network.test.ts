// Conformance: how Talos v1.13.9 finds the node's NIC from what we write.
//
// Rules (facts from upstream, see models/talos-network.ts for the full citations):
// - siderolabs/talos v1.13.9, internal/app/machined/pkg/runtime/v1alpha1/platform/nocloud/metadata.go,
//   Nocloud.applyNetworkConfigV2: `match` knows only `name` and `macaddress`; the link is the
//   `ethernets` key unless the MAC (EqualFold, no glob) names a physical link; addresses must be
//   prefixes (applyNetworkConfigV2Ethernet, netip.ParsePrefix).
// - same file's sibling nocloud.go, Nocloud.KernelArgs: nocloud boots with net.ifnames=0.
// - internal/app/machined/pkg/controllers/network/link_alias_config.go,
//   LinkAliasConfigController.Run: a fixed alias matching several links is skipped.

import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { NodePlan, SitePlan } from '../../src/catalogue/plan.js';
import { renderNetworkConfig } from '../../src/render/nocloud.js';
import { renderTalosDocuments } from '../../src/render/talos/index.js';
import { placeholderSecrets } from '../../src/secrets/placeholder.js';
import type { TalosSecrets } from '../../src/secrets/types.js';
import { talosSite } from '../fixtures/plans.js';
import { exampleNode, exampleNodes, talosDocs } from './helpers.js';
import { resolveLinkAlias, talosNoCloudV2, type HostLink } from './models/talos-network.js';

/** The address Talos ends up putting on each host link, from network-config and machine config. */
function talosAddresses(networkConfig: string, userData: string, links: HostLink[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (link: string, addr: string): void => {
    const cur = out.get(link) ?? [];
    if (!cur.includes(addr)) out.set(link, [...cur, addr]);
  };
  const platform = talosNoCloudV2(parseYaml(networkConfig), links);
  expect(platform.error, 'Talos rejects the whole network-config').toBeUndefined();
  for (const [link, addrs] of platform.addresses) addrs.forEach((a) => add(link, a));

  const docs = talosDocs(userData);
  const aliases = new Map<string, string | undefined>();
  for (const d of docs.filter((x) => x.kind === 'LinkAliasConfig')) aliases.set(d.name, resolveLinkAlias(d.selector.match, links)?.name);
  for (const d of docs.filter((x) => x.kind === 'LinkConfig')) {
    const physical = aliases.has(d.name) ? aliases.get(d.name) : links.find((l) => l.name === d.name)?.name;
    if (physical === undefined) continue;
    for (const a of d.addresses ?? []) add(physical, a.address);
  }
  return out;
}

/** Two ports of the same driver: the node's own NIC (its catalogue MAC) and a second one. */
function twinPorts(node: NodePlan, driver: string): HostLink[] {
  return [
    { name: 'eth0', mac: node.mac ?? '00:e0:4c:68:00:01', driver },
    { name: 'eth1', mac: '00:e0:4c:68:00:02', driver },
  ];
}

describe('Talos v1.13.9 NoCloud network-config v2 and link aliases', () => {
  it('store-0007 (r8169 selector class) gets its address on exactly its own port when the board has two r8169 ports', async () => {
    const { site, node, rendered } = await exampleNode('store-0007', 'cp-1');
    const links = twinPorts(node, 'r8169');
    const addrs = talosAddresses(rendered.networkConfig, rendered.userData, links);
    expect(addrs.get('eth0')).toEqual([`${node.ip}/${site.network.prefix}`]);
    expect(addrs.get('eth1')).toBeUndefined();
  });

  it('every example Talos node gets its static address from the seed alone, on the NIC with its MAC', async () => {
    for (const { site, node, rendered } of await exampleNodes((s) => s.os === 'talos')) {
      const links: HostLink[] = [
        { name: 'eth0', mac: '02:00:00:00:00:99', driver: 'virtio_net' },
        { name: 'eth1', mac: node.mac!, driver: 'virtio_net' },
      ];
      expect(node.mac, `${site.id}/${node.name} has a MAC`).toBeDefined();
      const platform = talosNoCloudV2(parseYaml(rendered.networkConfig), links);
      expect(platform.addresses.get('eth1'), `${site.id}/${node.name}`).toEqual([`${node.ip}/${site.network.prefix}`]);
      expect(platform.gateways.get('eth1')).toEqual([site.network.gateway]);
      expect(platform.dangling).toEqual([]);
    }
  });

  it('writes only match keys Talos reads (name, macaddress), never a glob as a MAC', async () => {
    for (const { rendered } of await exampleNodes()) {
      const eths = parseYaml(rendered.networkConfig).ethernets as Record<string, { match?: Record<string, string> }>;
      for (const eth of Object.values(eths)) {
        for (const key of Object.keys(eth.match ?? {})) expect(['name', 'macaddress']).toContain(key);
        if (eth.match?.macaddress) expect(eth.match.macaddress).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      }
    }
  });

  it('a glob hardwareAddr selector is never written as macaddress: the node MAC is', () => {
    const hw = { ...talosSite.nodes[0]!.hardware, nic: { selector: { hardwareAddr: '00:E0:4C:*' } } };
    const node: NodePlan = { ...talosSite.nodes[0]!, hardware: hw, mac: '00:e0:4c:12:34:56' };
    const site: SitePlan = { ...talosSite, nodes: [node] };
    const nc = parseYaml(renderNetworkConfig(site, node));
    const eth = Object.values(nc.ethernets as Record<string, any>)[0];
    expect(eth.match).toEqual({ macaddress: '00:e0:4c:12:34:56' });
    const links: HostLink[] = [
      { name: 'eth0', mac: '00:e0:4c:12:34:56', driver: 'r8169' },
      { name: 'eth1', mac: '00:e0:4c:12:34:57', driver: 'r8169' },
    ];
    const userData = renderTalosDocuments(site, node, placeholderSecrets('talos') as TalosSecrets)
      .map((d) => JSON.stringify(d))
      .join('\n---\n');
    expect(talosAddresses(renderNetworkConfig(site, node), userData, links).get('eth0')).toEqual(['10.4.12.11/24']);
  });

  it('addresses always carry a prefix length (Talos rejects the whole file otherwise)', async () => {
    for (const { rendered } of await exampleNodes()) {
      const eths = parseYaml(rendered.networkConfig).ethernets as Record<string, { addresses: string[] }>;
      for (const eth of Object.values(eths)) for (const a of eth.addresses) expect(a).toMatch(/\/\d+$/);
    }
  });

  it('the model itself rejects a prefix-less address, as Talos does', () => {
    const r = talosNoCloudV2({ version: 2, ethernets: { eth0: { addresses: ['10.0.0.2'] } } }, []);
    expect(r.error).toMatch(/ParsePrefix/);
  });
});
