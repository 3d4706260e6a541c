// manifest.json: the list of every artifact of a site with its digest, so CI, field
// technicians and `edgeimg verify` can tell an intact medium from a corrupted or stale one.

import { join } from 'node:path';
import { sha256Hex } from '../util/fsx.js';
import { readRegularFile } from '../util/safe-read.js';

/**
 * Largest manifest.json read. A site's manifest is a few KiB (about 250 bytes per artifact,
 * 5-6 artifacts per node, 1-5 nodes); 1 MiB holds thousands of artifacts, and bounds what a
 * corrupt or hostile manifest can make `verify` parse.
 */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export type ArtifactKind = 'user-data' | 'meta-data' | 'network-config' | 'seed-iso' | 'seed-img' | 'kairos-stick' | 'talosconfig' | 'field-sheet';

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
  /** The node's NIC MAC, when the catalogue gives one. */
  mac?: string;
}

/**
 * A class boot stick the site's nodes take (an addition to the contract's fields). It lives once
 * per hardware class and OS version in the image cache (and, linked, in OUT/_boot/), never in
 * the site's directory: this entry names it and its pin.
 */
export interface ManifestBootMedium {
  hardwareClass: string;
  os: 'talos' | 'kairos';
  /** Talos version, or Kairos <version>-<provider><provider version>. */
  version: string;
  /** Upstream file name (nocloud-amd64.iso, kairos-….iso). */
  name: string;
  /** Its path in the image cache and key in images.lock. */
  asset: string;
  /** From its pin; absent while the asset is not pinned. */
  sha256?: string;
  bytes?: number;
  /** A test stand-in (build --allow-standin), not the real OS image. */
  standin?: 'talos-like' | 'kairos-like';
}

/**
 * Where build links a class boot stick in OUT (when it is in the cache), relative to OUT: one
 * file per class and OS version, shared by every site. Site IDs cannot start with "_".
 */
export function bootMediumPath(b: Pick<ManifestBootMedium, 'hardwareClass' | 'os' | 'version' | 'name'>): string {
  return `_boot/${b.hardwareClass}/${b.os}-${b.version}/${b.name}`;
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
  bootMedia?: ManifestBootMedium[];
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
    nodes: m.nodes.map((n) => ({ name: n.name, hostname: n.hostname, role: n.role, arch: n.arch, firmware: n.firmware, hardwareClass: n.hardwareClass, address: n.address, ...(n.mac ? { mac: n.mac } : {}) })),
    ...(m.bootMedia && m.bootMedia.length > 0
      ? {
          bootMedia: [...m.bootMedia]
            .sort((a, b) => (a.hardwareClass < b.hardwareClass ? -1 : a.hardwareClass > b.hardwareClass ? 1 : 0))
            .map((b) => ({
              hardwareClass: b.hardwareClass,
              os: b.os,
              version: b.version,
              name: b.name,
              asset: b.asset,
              ...(b.sha256 ? { sha256: b.sha256, bytes: b.bytes } : {}),
              ...(b.standin ? { standin: b.standin } : {}),
            })),
        }
      : {}),
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

/** Reads OUT/<site>/manifest.json: a regular file (no symlink, FIFO or device) of at most MAX_MANIFEST_BYTES. */
export async function readManifest(siteDir: string): Promise<Manifest> {
  const file = join(siteDir, 'manifest.json');
  const read = await readRegularFile(file, MAX_MANIFEST_BYTES, 'manifest.json');
  if ('problem' in read) throw new Error(`${file}: ${read.problem}`);
  let m: Manifest;
  try {
    m = JSON.parse(read.data.toString('utf8')) as Manifest;
  } catch {
    throw new Error(`${file}: not valid JSON`);
  }
  if (m === null || typeof m !== 'object' || m.schemaVersion !== 1 || !Array.isArray(m.artifacts)) throw new Error(`${file}: not an edgeimg manifest (schemaVersion 1)`);
  const bad = m.artifacts.findIndex((a) => a === null || typeof a !== 'object' || typeof a.path !== 'string' || typeof a.sha256 !== 'string' || !Number.isSafeInteger(a.bytes));
  if (bad >= 0) throw new Error(`${file}: artifacts[${bad}] needs a string path and sha256 and an integer bytes`);
  if (!Array.isArray(m.nodes)) throw new Error(`${file}: not an edgeimg manifest (no nodes list)`);
  return m;
}
