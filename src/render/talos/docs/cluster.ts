// Cluster discovery documents (types/cluster), replacing cluster.discovery, cluster.id and
// cluster.secret from Talos 1.14.

import type { RenderContext } from '../context.js';
import { DISCOVERY_SERVICE_ENDPOINT } from '../defaults.js';
import { typedDocument, type TalosDocument } from '../document.js';

export function discoveryServiceConfig(_ctx: RenderContext): TalosDocument[] {
  return [typedDocument('DiscoveryServiceConfig', { name: 'default', endpoint: DISCOVERY_SERVICE_ENDPOINT })];
}

export function discoveryIdentityConfig(ctx: RenderContext): TalosDocument[] {
  return [
    typedDocument('DiscoveryIdentityConfig', {
      clusterID: ctx.secrets.clusterId,
      clusterSecret: ctx.secrets.clusterSecret,
    }),
  ];
}
