// Registry documents (types/cri), replacing machine.registries. Talos' generator sorts them by
// kind, then by name; the plan already lists registries and TLS hosts sorted, and we sort again
// so that the output does not depend on that.

import type { RenderContext } from '../context.js';
import { typedDocument, type TalosDocument } from '../document.js';

const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** One document per upstream registry, endpoints in the catalogue's order (Talos tries them in order). */
export function registryMirrorConfigs(ctx: RenderContext): TalosDocument[] {
  return ctx.site.registries.mirrors
    .map((m) => ({ name: m.registry, endpoints: m.endpoints.map((url) => ({ url })), ...(m.fallback ? {} : { skipFallback: true }) }))
    .sort(byName)
    .map((m) => typedDocument('RegistryMirrorConfig', m));
}

/** One document per mirror host, trusting the site's CA bundle, when one is configured. */
export function registryTlsConfigs(ctx: RenderContext): TalosDocument[] {
  const { caBundle, tlsHosts } = ctx.site.registries;
  if (caBundle.trim() === '') return [];
  return [...new Set(tlsHosts)]
    .map((name) => ({ name, ca: caBundle }))
    .sort(byName)
    .map((t) => typedDocument('RegistryTLSConfig', t));
}
