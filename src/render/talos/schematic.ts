// Image Factory schematic IDs, computed offline. The factory's ID is the sha256 (hex) of the
// schematic marshalled by gopkg.in/yaml.v3 with the struct below (siderolabs/image-factory,
// pkg/schematic/schematic.go), so we rebuild that struct field by field, with the same
// omitempty rules, and marshal it with the yaml.v3-compatible emitter in ./goyaml.ts.
//
//   Schematic     { overlay: Overlay (omitempty), customization: Customization }
//   Overlay       { image, name, options: map[string]any (omitempty) }
//   Customization { extraKernelArgs, meta: [{key: uint8, value}], systemExtensions:
//                   {officialExtensions}, secureboot: {includeWellKnownCertificates} } (all omitempty)
//
// The factory API keeps the order of extensions and kernel args as given (only its web wizard
// sorts extensions), so we keep the caller's order too.

import { createHash } from 'node:crypto';

import type { FactoryCustomization } from '../../catalogue/plan.js';
import { goNodeFromValue, marshalGoYaml, type GoNode } from './goyaml.js';

/** Schematic fields edgeimg's catalogue does not model yet, accepted so all upstream vectors can be checked. */
export interface SchematicExtras {
  meta?: Array<{ key: number; value: string }>;
  secureboot?: { includeWellKnownCertificates?: boolean };
}

export type SchematicInput = Partial<FactoryCustomization> & SchematicExtras;

const str = (v: string): GoNode => ({ t: 'str', v });
const seqOfStrings = (vs: string[]): GoNode => ({ t: 'seq', items: vs.map(str) });

function overlayNode(c: SchematicInput): GoNode | null {
  const o = c.overlay;
  if (!o) return null;
  const options = o.options ?? {};
  const hasOptions = Object.keys(options).length > 0;
  if (!o.image && !o.name && !hasOptions) return null; // a zero struct is omitted
  const entries: Array<[string, GoNode]> = [
    ['image', str(o.image ?? '')],
    ['name', str(o.name ?? '')],
  ];
  if (hasOptions) entries.push(['options', goNodeFromValue(options)]);
  return { t: 'map', entries };
}

function customizationNode(c: SchematicInput): GoNode {
  const entries: Array<[string, GoNode]> = [];
  if (c.extraKernelArgs && c.extraKernelArgs.length > 0) entries.push(['extraKernelArgs', seqOfStrings(c.extraKernelArgs)]);
  if (c.meta && c.meta.length > 0) {
    const items = c.meta.map(({ key, value }): GoNode => {
      if (!Number.isInteger(key) || key < 0 || key > 255) throw new Error(`schematic meta key ${key} is not a uint8`);
      return { t: 'map', entries: [['key', { t: 'raw', v: String(key) }], ['value', str(value)]] };
    });
    entries.push(['meta', { t: 'seq', items }]);
  }
  if (c.extensions && c.extensions.length > 0) {
    entries.push(['systemExtensions', { t: 'map', entries: [['officialExtensions', seqOfStrings(c.extensions)]] }]);
  }
  if (c.secureboot?.includeWellKnownCertificates) {
    entries.push(['secureboot', { t: 'map', entries: [['includeWellKnownCertificates', { t: 'raw', v: 'true' }]] }]);
  }
  return { t: 'map', entries };
}

/** The schematic exactly as Image Factory marshals it (the bytes its ID hashes). */
export function schematicYaml(c: SchematicInput): string {
  const entries: Array<[string, GoNode]> = [];
  const overlay = overlayNode(c);
  if (overlay) entries.push(['overlay', overlay]);
  entries.push(['customization', customizationNode(c)]);
  return marshalGoYaml({ t: 'map', entries });
}

/** The Image Factory schematic ID: sha256 (hex) of schematicYaml(c). */
export function schematicId(c: SchematicInput): string {
  return createHash('sha256').update(schematicYaml(c)).digest('hex');
}
