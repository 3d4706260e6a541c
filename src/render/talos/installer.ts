// The Talos installer image for a hardware class: the Image Factory nocloud installer for the
// class's schematic, at the site's Talos version.

import type { HardwarePlan, SitePlan } from '../../catalogue/plan.js';
import { schematicId } from './schematic.js';

export const IMAGE_FACTORY_HOST = 'factory.talos.dev';

// A fleet has a handful of hardware classes and thousands of nodes: compute each schematic once.
const idByCustomization = new Map<string, string>();

function cachedSchematicId(factory: HardwarePlan['factory']): string {
  const key = JSON.stringify(factory);
  let id = idByCustomization.get(key);
  if (id === undefined) {
    id = schematicId(factory);
    idByCustomization.set(key, id);
  }
  return id;
}

export function installerImage(site: SitePlan, hw: HardwarePlan): string {
  if (!site.talos) throw new Error(`site ${site.id}: not a Talos site`);
  return `${IMAGE_FACTORY_HOST}/nocloud-installer/${cachedSchematicId(hw.factory)}:${site.talos.version}`;
}
