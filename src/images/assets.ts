// Which boot image assets a hardware class needs, per OS and OS version its sites run: the
// "class boot media" that live once per class and version, never per site.
//
// Talos (Image Factory, siderolabs/image-factory docs/api.md, `GET /image/:schematic/:version/:path`;
// path parsing in internal/profile/profile.go ParseFromPath):
//   <platform>-<arch>.iso        ISO, hybrid BIOS/UEFI (the class boot stick)
//   <platform>-<arch>.raw.xz     disk image; the SBC overlay is applied to disk images of any
//                                platform (EnhanceFromSchematic), so SBC classes get this one
//   kernel-<arch>, initramfs-<arch>.xz
//                                netboot; platform-independent, and they carry neither the
//                                schematic's extra kernel args nor META ("initramfs/kernel can't
//                                carry extra kernel args & META"), hence also:
//   cmdline-<platform>-<arch>    the kernel command line for netboot
// The platform is `nocloud`, not `metal`: edgeimg's per-node config is a NoCloud `cidata` seed,
// which Talos reads only with talos.platform=nocloud (siderolabs/talos
// internal/app/machined/pkg/runtime/v1alpha1/platform/nocloud), and the installer edgeimg
// renders is already `nocloud-installer` (src/render/talos/installer.ts). A metal ISO would
// boot into maintenance mode and never look at the seed stick.
//
// Kairos (kairos-io/kairos-docs content/en/docs/Reference/artifacts.md, "Artifact Naming
// Convention"; Installation/netboot.md for the download URLs):
//   kairos-<flavor>-<flavor_release>-<variant>-<arch>-<device>-<version>[-<provider><provider version>]
//   + `.iso`, `-kernel`, `-initrd`, `.squashfs`, published on
//   https://github.com/kairos-io/kairos/releases/download/<version>/<name>
// Container tags spell the provider version with `-` where release assets have `+` (OCI tags
// allow no `+`): quay.io/kairos/ubuntu:24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4-k3s1 is
// the image of kairos-ubuntu-24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4+k3s1.iso.
// Device images (rpi4, ...) are not on GitHub releases: the `.img` lives in the `<tag>-img`
// container image on quay.io (Reference/image_matrix.md), so it is import-only here.

import type { Arch, Firmware, HardwarePlan, OsName, SitePlan } from '../catalogue/plan.js';
import { installerImage } from '../render/talos/installer.js';
import { schematicId, schematicYaml } from '../render/talos/schematic.js';
import { CatalogueError, excerpt } from '../util/diagnostics.js';
import { assetPathProblem } from './lock.js';

/** The Talos platform of every class boot image: the one that reads the `cidata` seed. */
export const TALOS_PLATFORM = 'nocloud';

export const DEFAULT_SOURCES: AssetSources = {
  factory: 'https://factory.talos.dev',
  kairosReleases: 'https://github.com/kairos-io/kairos/releases/download',
};

export interface AssetSources {
  /** Image Factory base URL (POST /schematics, GET /image/...). */
  factory: string;
  /** Base URL of Kairos release downloads (…/<version>/<file>). */
  kairosReleases: string;
}

export type AssetKind = 'iso' | 'disk-image' | 'kernel' | 'initramfs' | 'cmdline' | 'rootfs';
/** `boot`: what goes on the class boot stick; `netboot`: what a PXE server hands out. */
export type AssetUse = 'boot' | 'netboot';

export interface BootAsset {
  kind: AssetKind;
  use: AssetUse;
  /** Upstream file name, and the file's name in the cache. */
  name: string;
  /** Path inside the image cache, and the asset's key in images.lock. */
  path: string;
  /** Where `images pull` downloads it; absent for import-only assets. */
  url?: string;
  /** Import-only assets: where a person gets the file. */
  source?: string;
}

export interface TalosNeed {
  schematicId: string;
  /** The schematic exactly as POST /schematics receives it (its sha256 is the ID). */
  schematic: string;
  platform: string;
  installerImage: string;
}

export interface KairosNeed {
  /** Release asset name without extension: kairos-ubuntu-24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4+k3s1 */
  stem: string;
  baseImage?: string;
  flavor: string;
  variant: string;
  device: string;
  version: string;
  provider: string;
  providerVersion: string;
}

/** One (hardware class, OS, OS version) the catalogue's sites use, and the assets it needs. */
export interface ImageNeed {
  hardwareClass: string;
  os: OsName;
  /** Talos: v1.13.9. Kairos: <version>-<provider><provider version>, e.g. v3.5.1-k3sv1.33.4+k3s1. */
  version: string;
  arch: Arch;
  firmware: Firmware;
  sites: string[];
  nodes: number;
  talos?: TalosNeed;
  kairos?: KairosNeed;
  assets: BootAsset[];
  /** Things a person should know (a base image that disagrees with the site, import-only assets). */
  notes: string[];
}

const trimSlash = (u: string): string => u.replace(/\/+$/, '');

function talosNeed(site: SitePlan, hw: HardwarePlan, sources: AssetSources): Pick<ImageNeed, 'talos' | 'assets' | 'notes'> {
  const version = site.talos!.version;
  const id = schematicId(hw.factory);
  const p = TALOS_PLATFORM;
  const arch = hw.arch;
  const asset = (kind: AssetKind, use: AssetUse, name: string): BootAsset => ({
    kind,
    use,
    name,
    path: `talos/${version}/${id}/${name}`,
    url: `${trimSlash(sources.factory)}/image/${id}/${version}/${name}`,
  });
  const notes: string[] = [];
  const assets: BootAsset[] = [];
  if (hw.factory.overlay) {
    // An SBC boots its firmware from the SD card image the overlay builds; it has no ISO path.
    assets.push(asset('disk-image', 'boot', `${p}-${arch}.raw.xz`));
    notes.push(`SBC overlay ${hw.factory.overlay.name}: the boot medium is the disk image (write it to the SD card); no ISO or netboot assets`);
  } else {
    assets.push(asset('iso', 'boot', `${p}-${arch}.iso`));
    assets.push(asset('kernel', 'netboot', `kernel-${arch}`));
    assets.push(asset('initramfs', 'netboot', `initramfs-${arch}.xz`));
    assets.push(asset('cmdline', 'netboot', `cmdline-${p}-${arch}`));
  }
  return {
    talos: { schematicId: id, schematic: schematicYaml(hw.factory), platform: p, installerImage: installerImage(site, hw) },
    assets,
    notes,
  };
}

export interface KairosImageRef {
  repository: string; // quay.io/kairos/ubuntu
  flavor: string; // ubuntu-24.04
  variant: string; // standard | core
  arch: string;
  device: string; // generic, rpi4, ...
  version: string; // v3.5.1
  provider?: string; // k3s | k0s
  providerVersion?: string; // v1.33.4+k3s1 (with the '+' restored)
}

const KAIROS_TAG =
  /^(?<release>[A-Za-z0-9._-]+?)-(?<variant>core|standard)-(?<arch>amd64|arm64)-(?<device>[a-z0-9_]+(?:-[a-z0-9_]+)*?)-(?<version>v\d+\.\d+\.\d+(?:-(?:alpha|beta|rc)[0-9.]*)?)(?:-(?<provider>k3s|k0s)(?<pv>v\d+\.\d+\.\d+)(?:-(?<build>[A-Za-z0-9.]+))?)?$/;

/** A Kairos release image reference (quay.io/kairos/<flavor>:<tag>) taken apart, or null when it is not one. */
export function parseKairosImage(ref: string): KairosImageRef | null {
  const colon = ref.lastIndexOf(':');
  if (colon < 0 || ref.includes('@')) return null;
  const repository = ref.slice(0, colon);
  const tag = ref.slice(colon + 1);
  const distro = repository.split('/').pop() ?? '';
  if (!/^[a-z][a-z0-9]*$/.test(distro) || repository.includes('@')) return null;
  const m = KAIROS_TAG.exec(tag);
  if (!m?.groups) return null;
  const g = m.groups;
  return {
    repository,
    flavor: `${distro}-${g.release}`,
    variant: g.variant!,
    arch: g.arch!,
    device: g.device!,
    version: g.version!,
    ...(g.provider ? { provider: g.provider, providerVersion: g.build ? `${g.pv}+${g.build}` : g.pv! } : {}),
  };
}

function kairosNeed(site: SitePlan, hw: HardwarePlan, sources: AssetSources): Pick<ImageNeed, 'kairos' | 'assets' | 'notes'> {
  const t = site.kairos!;
  const notes: string[] = [];
  const base = hw.kairosBaseImage ? parseKairosImage(hw.kairosBaseImage) : null;
  if (hw.kairosBaseImage && !base) {
    notes.push(`base image ${hw.kairosBaseImage} is not a Kairos release image: the assets listed are the release's for the site's flavor; build your own with AuroraBoot and import it under these names`);
  }
  if (base) {
    const differs: string[] = [];
    if (base.flavor !== t.flavor) differs.push(`flavor ${base.flavor} (site: ${t.flavor})`);
    if (base.version !== t.version) differs.push(`Kairos ${base.version} (site: ${t.version})`);
    if (base.provider !== t.provider || base.providerVersion !== t.providerVersion) {
      differs.push(`${base.provider ?? 'no provider'} ${base.providerVersion ?? ''}`.trim() + ` (site: ${t.provider} ${t.providerVersion})`);
    }
    if (base.arch !== hw.arch) differs.push(`arch ${base.arch} (class: ${hw.arch})`);
    if (differs.length > 0) notes.push(`base image ${hw.kairosBaseImage} differs from what its sites run: ${differs.join(', ')}; the assets listed follow the sites`);
  }
  const variant = base?.variant ?? 'standard';
  const device = base?.device ?? 'generic';
  const stem = `kairos-${t.flavor}-${variant}-${hw.arch}-${device}-${t.version}-${t.provider}${t.providerVersion}`;
  const asset = (kind: AssetKind, use: AssetUse, name: string, extra: Partial<BootAsset>): BootAsset => ({
    kind,
    use,
    name,
    path: `kairos/${t.version}/${name}`,
    ...extra,
  });
  const url = (name: string): Partial<BootAsset> => ({ url: `${trimSlash(sources.kairosReleases)}/${t.version}/${name}` });
  const assets: BootAsset[] = [];
  if (device === 'generic') {
    assets.push(asset('iso', 'boot', `${stem}.iso`, url(`${stem}.iso`)));
    assets.push(asset('kernel', 'netboot', `${stem}-kernel`, url(`${stem}-kernel`)));
    assets.push(asset('initramfs', 'netboot', `${stem}-initrd`, url(`${stem}-initrd`)));
    assets.push(asset('rootfs', 'netboot', `${stem}.squashfs`, url(`${stem}.squashfs`)));
  } else {
    const source = `${hw.kairosBaseImage}-img`;
    assets.push(asset('disk-image', 'boot', `${stem}.img`, { source }));
    notes.push(`device image for ${device}: not published as a release download; extract the .img from the container image ${source} and import it (edgeimg images import --class ${hw.name} --as ${stem}.img FILE)`);
  }
  return {
    kairos: {
      stem,
      ...(hw.kairosBaseImage ? { baseImage: hw.kairosBaseImage } : {}),
      flavor: t.flavor,
      variant,
      device,
      version: t.version,
      provider: t.provider,
      providerVersion: t.providerVersion,
    },
    assets,
    notes,
  };
}

export function kairosVersionKey(t: NonNullable<SitePlan['kairos']>): string {
  return `${t.version}-${t.provider}${t.providerVersion}`;
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Every (hardware class, OS, OS version) the sites use, with the assets each needs, sorted by
 * class, OS and version. Throws CatalogueError when a version or flavor cannot name a file.
 */
export function imageNeeds(plans: readonly SitePlan[], sources: AssetSources = DEFAULT_SOURCES): ImageNeed[] {
  const byKey = new Map<string, ImageNeed>();
  for (const site of plans) {
    const counted = new Map<string, number>();
    for (const node of site.nodes) counted.set(node.hardware.name, (counted.get(node.hardware.name) ?? 0) + 1);
    for (const [className, nodes] of counted) {
      const hw = site.nodes.find((n) => n.hardware.name === className)!.hardware;
      const version = site.os === 'talos' ? site.talos!.version : kairosVersionKey(site.kairos!);
      const key = [className, site.os, version, site.kairos?.flavor ?? ''].join('\0');
      const have = byKey.get(key);
      if (have) {
        have.sites.push(site.id);
        have.nodes += nodes;
        continue;
      }
      const part = site.os === 'talos' ? talosNeed(site, hw, sources) : kairosNeed(site, hw, sources);
      for (const a of part.assets) {
        const bad = assetPathProblem(a.path);
        if (bad) {
          throw new CatalogueError([{ ...site.source, message: `site ${site.id}, hardware class ${className}: cannot name its boot image ${excerpt(a.path)}: the path ${bad}` }]);
        }
      }
      byKey.set(key, { hardwareClass: className, os: site.os, version, arch: hw.arch, firmware: hw.firmware, sites: [site.id], nodes, ...part });
    }
  }
  const needs = [...byKey.values()];
  for (const n of needs) n.sites.sort(byCodePoint);
  return needs.sort(
    (a, b) =>
      byCodePoint(a.hardwareClass, b.hardwareClass) ||
      byCodePoint(a.os, b.os) ||
      byCodePoint(a.version, b.version) ||
      byCodePoint(a.kairos?.flavor ?? '', b.kairos?.flavor ?? ''),
  );
}
