// The printable field sheet per site (OUT/<site>/field-sheet.html), from the handlebars
// template templates/field-sheet.hbs: each node with its MAC, hardware class, which class boot
// stick and which seed stick it takes with their sha256, and the steps in order. Built from
// data the build already has, so it is as reproducible as the rest of the output.

import { packagePath } from '../util/paths.js';
import { loadTemplate, type TemplateSet } from '../util/precompiled-template.js';
import { plural } from '../util/diagnostics.js';

export interface FieldSheetNode {
  name: string;
  role: 'controlplane' | 'worker';
  hostname: string;
  address: string;
  mac?: string;
  hardwareClass: string;
  arch: string;
  firmware: 'uefi' | 'bios';
  /** The class boot stick's file and its pinned sha256 (images.lock), when known. */
  classStick: { name: string; sha256?: string; standin?: string };
  /** The seed stick image, relative to OUT/<site>, and its sha256; absent without --media img. */
  seedStick?: { path: string; sha256: string };
  /** Kairos: the node's one-stick ISO (class live ISO + config.yaml), with --media onestick. */
  oneStick?: { path: string; sha256: string };
}

export interface FieldSheetData {
  site: string;
  os: 'talos' | 'kairos';
  osVersion: string;
  inputDigest: string;
  labels: Record<string, string>;
  nodes: FieldSheetNode[];
}

let compiled: HandlebarsTemplateDelegate | undefined;

/** Precompiled by scripts/precompile.ts (src/util/precompiled-template.ts). */
export const FIELD_SHEET_TEMPLATE: TemplateSet = { id: 'field-sheet', file: ['templates', 'field-sheet.hbs'], options: { strict: true, noEscape: false } };

export function fieldSheetTemplatePath(): string {
  return packagePath('templates', 'field-sheet.hbs');
}

export function renderFieldSheet(d: FieldSheetData): string {
  compiled ??= loadTemplate(FIELD_SHEET_TEMPLATE).render;
  return compiled({
    site: d.site,
    os: `${d.os === 'talos' ? 'Talos' : 'Kairos'} ${d.osVersion}`,
    talos: d.os === 'talos',
    nodeCount: plural(d.nodes.length, 'node'),
    standin: d.nodes.some((n) => n.classStick.standin !== undefined),
    inputDigest: d.inputDigest,
    labels: Object.keys(d.labels).sort().map((k) => `${k}=${d.labels[k]}`).join(', ') || 'none',
    nodes: d.nodes.map((n) => ({
      name: n.name,
      role: n.role === 'controlplane' ? 'control plane' : 'worker',
      hostname: n.hostname,
      address: n.address,
      mac: n.mac ?? 'not in the catalogue',
      hardwareClass: n.hardwareClass,
      arch: n.arch,
      firmware: n.firmware === 'uefi' ? 'UEFI' : 'BIOS',
      classStick: {
        name: n.classStick.name,
        sha256: n.classStick.sha256 ? `sha256 ${n.classStick.sha256}` : 'not pinned yet (edgeimg images list)',
        standin: n.classStick.standin ?? false,
      },
      seedStick: n.seedStick ? { path: n.seedStick.path, sha256: `sha256 ${n.seedStick.sha256}` } : { path: 'not built (build with --media iso,img)', sha256: '' },
      oneStick: n.oneStick ? { path: n.oneStick.path, sha256: `sha256 ${n.oneStick.sha256}` } : false,
    })),
  });
}
