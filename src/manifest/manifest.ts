// manifest.json: the list of every artifact of a site with its digest, so CI, field
// technicians and `edgeimg verify` can tell an intact medium from a corrupted or stale one.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../util/fsx.js';

export type ArtifactKind = 'user-data' | 'meta-data' | 'network-config' | 'seed-iso' | 'seed-img' | 'talosconfig';

export interface ManifestArtifact {
  path: string; // relative to OUT/<site>/
  kind: ArtifactKind;
  node: string | null;
  sha256: string;
  bytes: number;
  secret: boolean;
}

/** Per-node facts the verifier needs without the catalogue (an addition to the contract's fields). */
export interface ManifestNode {
  name: string;
  hostname: string;
  role: 'controlplane' | 'worker';
  arch: 'amd64' | 'arm64';
  firmware: 'uefi' | 'bios';
  hardwareClass: string;
  address: string;
}

export interface Manifest {
  schemaVersion: 1;
  site: string;
  os: 'talos' | 'kairos';
  /** Talos version (v1.13.x / v1.14.x) or Kairos version with provider. */
  osVersion: string;
  generator: { name: string; version: string };
  inputDigest: string; // sha256:<hex>
  artifacts: ManifestArtifact[];
  nodes: ManifestNode[];
}

export function artifactOf(path: string, kind: ArtifactKind, node: string | null, data: string | Uint8Array, secret: boolean): ManifestArtifact {
  const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  return { path, kind, node, sha256: sha256Hex(data), bytes, secret };
}

export function serializeManifest(m: Manifest): string {
  const artifacts = [...m.artifacts].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const ordered: Manifest = {
    schemaVersion: 1,
    site: m.site,
    os: m.os,
    osVersion: m.osVersion,
    generator: { name: m.generator.name, version: m.generator.version },
    inputDigest: m.inputDigest,
    artifacts: artifacts.map((a) => ({ path: a.path, kind: a.kind, node: a.node, sha256: a.sha256, bytes: a.bytes, secret: a.secret })),
    nodes: m.nodes.map((n) => ({ name: n.name, hostname: n.hostname, role: n.role, arch: n.arch, firmware: n.firmware, hardwareClass: n.hardwareClass, address: n.address })),
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

export async function readManifest(siteDir: string): Promise<Manifest> {
  const text = await readFile(join(siteDir, 'manifest.json'), 'utf8');
  const m = JSON.parse(text) as Manifest;
  if (m.schemaVersion !== 1 || !Array.isArray(m.artifacts)) throw new Error(`${join(siteDir, 'manifest.json')}: not an edgeimg manifest (schemaVersion 1)`);
  return m;
}
