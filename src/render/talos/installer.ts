// The Talos installer image for a hardware class: the Image Factory nocloud installer for the
// class's schematic, at the site's Talos version.

import type { HardwarePlan, SitePlan } from '../../catalogue/plan.js';
import { schematicId } from './schematic.js';

export const IMAGE_FACTORY_HOST = 'factory.talos.dev';

export function installerImage(site: SitePlan, hw: HardwarePlan): string {
  if (!site.talos) throw new Error(`site ${site.id}: not a Talos site`);
  return `${IMAGE_FACTORY_HOST}/nocloud-installer/${schematicId(hw.factory)}:${site.talos.version}`;
}
