// Which client boots a built site needs, and what each must show: the expectations come from
// the site plan (the catalogue), not from the seed, so a renderer mistake shows up as a failed
// check rather than being echoed back.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SitePlan } from '../../catalogue/plan.js';
import { readManifest } from '../../manifest/manifest.js';
import type { CloudInitClientOptions } from './client.js';
import type { SeedMedium } from './checks.js';

export interface CloudInitTarget {
  site: string;
  node: string;
  os: 'talos' | 'kairos';
  /** The node's own architecture; the client is amd64 either way (seeds are architecture-independent). */
  arch: 'amd64' | 'arm64';
  /** Undefined when neither the plan nor the manifest has one yet. */
  mac?: string;
  macSource?: 'plan' | 'manifest';
  seeds: Partial<Record<SeedMedium, string>>;
  expect: CloudInitClientOptions['expect'];
}

/** One target per node of a site built into `siteDir` (OUT/<site>), with seeds that exist. */
export async function cloudInitTargets(siteDir: string, plan: SitePlan): Promise<CloudInitTarget[]> {
  const manifest = await readManifest(siteDir);
  if (manifest.site !== plan.id) throw new Error(`${siteDir} holds site ${manifest.site}, not ${plan.id}`);
  return manifest.nodes.map((mn) => {
    const pn = plan.nodes.find((n) => n.name === mn.name);
    if (!pn) throw new Error(`${plan.id}: node ${mn.name} of the manifest is not in the plan`);
    const mac = pn.mac ?? mn.mac;
    const seeds: Partial<Record<SeedMedium, string>> = {};
    for (const [medium, file] of [['iso', 'seed.iso'], ['img', 'seed.img']] as const) {
      const p = join(siteDir, 'nodes', mn.name, file);
      if (existsSync(p)) seeds[medium] = p;
    }
    return {
      site: plan.id,
      node: mn.name,
      os: manifest.os,
      arch: mn.arch,
      ...(mac ? { mac: mac.toLowerCase(), macSource: pn.mac ? ('plan' as const) : ('manifest' as const) } : {}),
      seeds,
      expect: {
        hostname: pn.hostname,
        address: pn.ip,
        prefix: pn.prefix,
        gateway: plan.network.gateway,
        dns: [...plan.network.dns],
        searchDomains: [...plan.network.searchDomains],
        userData: manifest.os === 'kairos' ? 'cloud-config' : 'not-cloud-config',
      },
    };
  });
}
