// Kairos first-boot cloud-configs for the k3s and k0s providers. The shared parts (install,
// admin user, hostname, static network, mirror CA trust) are built in common.ts; k3s.ts and
// k0s.ts add only what their provider needs. See docs/decisions-kairos.md for the sources.

import { emitYaml } from '../../util/yaml-emit.js';
import type { NodePlan, SitePlan } from '../../catalogue/plan.js';
import type { KairosSecrets } from '../../secrets/types.js';
import { assembleCloudConfig, mirrorCaPath, unsupported, type RenderContext } from './common.js';
import { flavorTraits } from './flavor.js';
import { renderK0s } from './k0s.js';
import { renderK3s } from './k3s.js';

export { k3sServerToken } from './k3s.js';

/** What each provider calls our two roles, for step names in the rendered config. */
const ROLE_NAMES = {
  k3s: { controlplane: 'server', worker: 'agent' },
  k0s: { controlplane: 'controller', worker: 'worker' },
} as const;

/** The node's cloud-config as a plain object; overlays are applied to it before serialization. */
export function renderKairosCloudConfig(site: SitePlan, node: NodePlan, secrets: KairosSecrets): Record<string, unknown> {
  if (site.os !== 'kairos' || site.kairos === undefined) {
    throw new Error(`internal error: site ${site.id} is not a Kairos site`);
  }
  const traits = flavorTraits(site);
  const noFallback = site.registries.mirrors.filter((m) => !m.fallback).map((m) => m.registry);
  if (noFallback.length > 0) {
    // k3s can only disable the default endpoint for every registry at once, and containerd's
    // hosts.toml (k0s) always keeps `server` as the last resort: neither expresses it per registry.
    throw unsupported(site, `registry mirrors with fallback: false (${noFallback.join(', ')}) are supported on Talos only; Kairos runtimes always fall back to the upstream registry`);
  }
  const ctx: RenderContext = { site, node, secrets, traits, mirrorCa: mirrorCaPath(site, traits) };
  const provider = site.kairos.provider;
  const parts = provider === 'k3s' ? renderK3s(ctx) : renderK0s(ctx);
  return assembleCloudConfig(ctx, traits, parts, `${provider} ${ROLE_NAMES[provider][node.role]}`);
}

/**
 * `#cloud-config` then the document as YAML 1.1 (Kairos reads it with Go YAML libraries and
 * cloud-init with PyYAML, both 1.1-minded: strings such as `on` or `0644` come out quoted).
 * Key order is the object's insertion order, which the renderer fixes; no line folding.
 * Integer `permissions` values are written in octal, as file modes are read.
 */
export function serializeCloudConfig(obj: Record<string, unknown>): string {
  return `#cloud-config\n${emitYaml(obj, { indent: 2, octalKeys: ['permissions'] })}`;
}
