// Identity: a node's artifacts must be that node's, of that site. Each artifact's bytes are
// bound to the manifest by sha256; this binds the manifest and the bytes to a site and a node:
// the requested site id, the instance-id and hostname in meta-data, the address and MAC in
// network-config, the hostname in user-data and, when the catalogue is at hand, the nodes the
// catalogue says the site has. A site tree copied under another name, or two node directories
// swapped with the manifest "fixed", fail here.

import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { SitePlan } from '../catalogue/plan.js';
import type { Manifest } from '../manifest/manifest.js';
import { instanceId } from '../render/nocloud.js';
import type { CheckResult } from './static.js';
import { plural } from '../util/diagnostics.js';

type Doc = Record<string, any>;

function yamlOrUndefined(data: Buffer | undefined): Doc | undefined {
  if (!data) return undefined;
  try {
    const v = parseYaml(data.toString('utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Doc) : undefined;
  } catch {
    return undefined;
  }
}

/** The hostname a node's user-data sets: Talos HostnameConfig (or v1alpha1), Kairos `hostname`. */
export function userDataHostname(os: Manifest['os'], data: Buffer): string | undefined {
  try {
    if (os === 'kairos') return (yamlOrUndefined(data)?.hostname as string | undefined) ?? undefined;
    for (const d of parseAllDocuments(data.toString('utf8'))) {
      if (d.errors.length > 0) return undefined;
      const doc = d.toJS() as Doc | null;
      if (doc?.kind === 'HostnameConfig' && typeof doc.hostname === 'string') return doc.hostname;
      if (doc?.version === 'v1alpha1' && !('kind' in doc) && typeof doc.machine?.network?.hostname === 'string') return doc.machine.network.hostname;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

export interface IdentityInput {
  /** The site id the caller asked for (OUT/<site>). */
  siteId: string;
  manifest: Manifest;
  /** Artifact bytes by manifest path (those that could be read). */
  contents: Map<string, Buffer>;
  /** The catalogue's plan for the site, when the catalogue is available. */
  plan?: SitePlan;
}

export function identityChecks({ siteId, manifest, contents, plan }: IdentityInput): CheckResult[] {
  const out: CheckResult[] = [];
  const add = (node: string | null, ok: boolean, message: string): void => void out.push({ check: 'identity', node, ok, message });

  if (manifest.site !== siteId) add(null, false, `the manifest is for site ${JSON.stringify(manifest.site)}, not ${siteId}: this is another site's output`);
  else add(null, true, `manifest names site ${siteId}`);

  if (plan) {
    const want = plan.nodes.map((n) => `${n.name} ${n.hostname} ${n.role} ${n.ip} ${n.mac ?? '-'} ${n.hardware.name}`).sort();
    const have = manifest.nodes.map((n) => `${n.name} ${n.hostname} ${n.role} ${n.address} ${n.mac ?? '-'} ${n.hardwareClass}`).sort();
    if (plan.os !== manifest.os) add(null, false, `the catalogue says site ${siteId} runs ${plan.os}, the manifest says ${manifest.os}`);
    if (want.join('\n') !== have.join('\n')) {
      const missing = want.filter((w) => !have.includes(w));
      const extra = have.filter((h) => !want.includes(h));
      add(null, false, `the manifest's nodes differ from the catalogue's for ${siteId}: catalogue has [${missing.join('; ')}], manifest has [${extra.join('; ')}]`);
    } else add(null, true, `the manifest's ${plural(have.length, 'node')} ${have.length === 1 ? 'is' : 'are'} the catalogue's`);
  }

  for (const node of manifest.nodes) {
    const arts = manifest.artifacts.filter((a) => a.node === node.name);
    const problems: string[] = [];
    for (const a of arts) if (!a.path.startsWith(`nodes/${node.name}/`)) problems.push(`${a.path} is not under nodes/${node.name}/`);
    const file = (kind: string): Buffer | undefined => {
      const a = arts.find((x) => x.kind === kind);
      return a ? contents.get(a.path) : undefined;
    };
    const userData = file('user-data');
    const meta = yamlOrUndefined(file('meta-data'));
    const net = yamlOrUndefined(file('network-config'));
    if (!userData || !meta || !net) continue; // reported by the static checks
    const iid = instanceId(manifest.site, node.name, userData);
    if (meta['instance-id'] !== iid) problems.push(`meta-data instance-id ${JSON.stringify(String(meta['instance-id']).slice(0, 120))} is not ${iid} (site ${manifest.site}, node ${node.name}, this user-data)`);
    if (meta['local-hostname'] !== node.hostname) problems.push(`meta-data local-hostname ${JSON.stringify(String(meta['local-hostname']).slice(0, 80))} is not ${node.hostname}`);
    const udHost = userDataHostname(manifest.os, userData);
    if (udHost !== node.hostname) problems.push(`user-data sets hostname ${JSON.stringify(String(udHost).slice(0, 80))}, not ${node.hostname}`);
    const eths = Object.values((net.ethernets ?? {}) as Record<string, Doc>);
    const addrs = eths.flatMap((e) => (Array.isArray(e.addresses) ? e.addresses : [])) as string[];
    if (!addrs.some((a) => typeof a === 'string' && a.split('/')[0] === node.address)) problems.push(`network-config does not give ${node.address}`);
    if (node.mac && !eths.some((e) => String(e.match?.macaddress ?? '').toLowerCase() === node.mac)) problems.push(`network-config does not match the NIC ${node.mac}`);
    if (problems.length > 0) add(node.name, false, problems.join('; '));
    else add(node.name, true, `meta-data, user-data and network-config are ${manifest.site}/${node.name}'s (${node.hostname}, ${node.address})`);
  }
  return out;
}
