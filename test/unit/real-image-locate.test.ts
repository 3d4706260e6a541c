// Real-image cache lookup (layout in src/verify/real-image.ts and docs/real-images.md) and the
// guest set-up derived from a node's seed: installer image, install target, slirp network, OS CA.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest, ManifestNode } from '../../src/manifest/manifest.js';
import {
  guestNetwork,
  installTarget,
  locateRealImage,
  parseInstallerImage,
  readSiteOsCaPem,
  realImageCacheDir,
  scratchKindFor,
  slirpPlan,
  talosInstallerImage,
} from '../../src/verify/real-image.js';
import { renderTalosconfig } from '../../src/secrets/talosconfig.js';
import type { TalosSecrets } from '../../src/secrets/types.js';

const SCHEMATIC = 'fb79be8885b2ec0c41fb38a6867e28b8e76fd73df9eadbb3bd39adb0a1eb306d';
const OTHER = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';

const root = mkdtempSync(join(tmpdir(), 'edgeimg-realimg-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const node = (over: Partial<ManifestNode> = {}): ManifestNode => ({
  name: 'cp-1',
  hostname: 'store-0412-cp-1',
  role: 'controlplane',
  arch: 'amd64',
  firmware: 'uefi',
  hardwareClass: 'nuc12-amd64',
  address: '10.4.12.11',
  ...over,
});

const manifest = (os: Manifest['os'], osVersion: string): Manifest => ({
  schemaVersion: 1,
  site: 's',
  os,
  osVersion,
  generator: { name: 'edgeimg', version: '0' },
  inputDigest: 'sha256:0',
  artifacts: [],
  nodes: [],
});

const talos113 = (schematic: string, version = 'v1.13.9'): string => `version: v1alpha1
machine:
    type: controlplane
    install:
        disk: /dev/nvme0n1
        image: factory.talos.dev/nocloud-installer/${schematic}:${version}
        wipe: false
cluster:
    clusterName: x
---
apiVersion: v1alpha1
kind: HostnameConfig
hostname: store-0412-cp-1
`;

const talos114 = (schematic: string): string => `version: v1alpha1
machine:
    type: worker
---
apiVersion: v1alpha1
kind: UnattendedInstallConfig
installer:
    image: factory.talos.dev/nocloud-installer/${schematic}:v1.14.2
provisioning:
    diskSelector:
        match: disk.dev_path == "/dev/sda"
    wipe: false
`;

function touch(...parts: string[]): string {
  const p = join(...parts);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, 'iso');
  return p;
}

describe('locateRealImage', () => {
  let images: string;
  beforeEach(() => {
    images = mkdtempSync(join(root, 'images-'));
  });

  it('finds a cached Talos ISO by version, schematic (from 1.13 user-data) and arch', () => {
    const iso = touch(images, 'images', 'cache', 'talos', 'v1.13.9', SCHEMATIC, 'nocloud-amd64.iso');
    expect(locateRealImage(images, manifest('talos', 'v1.13.9'), node(), talos113(SCHEMATIC))).toEqual({ profile: 'talos', path: iso, schematic: SCHEMATIC });
    // the cache dir and the images/ dir work as roots too
    expect(locateRealImage(join(images, 'images'), manifest('talos', 'v1.13.9'), node(), Buffer.from(talos113(SCHEMATIC)))?.path).toBe(iso);
    expect(locateRealImage(join(images, 'images', 'cache'), manifest('talos', 'v1.13.9'), node(), talos113(SCHEMATIC))?.path).toBe(iso);
  });

  it('reads the schematic from a 1.14 UnattendedInstallConfig', () => {
    const iso = touch(images, 'images', 'cache', 'talos', 'v1.14.2', OTHER, 'nocloud-arm64.iso');
    expect(locateRealImage(images, manifest('talos', 'v1.14.2'), node({ arch: 'arm64' }), talos114(OTHER))?.path).toBe(iso);
  });

  it('returns null for another schematic, version or arch, and without a cache', () => {
    touch(images, 'images', 'cache', 'talos', 'v1.13.9', SCHEMATIC, 'nocloud-amd64.iso');
    const m = manifest('talos', 'v1.13.9');
    expect(locateRealImage(images, m, node(), talos113(OTHER))).toBeNull();
    expect(locateRealImage(images, manifest('talos', 'v1.13.8'), node(), talos113(SCHEMATIC, 'v1.13.8'))).toBeNull();
    expect(locateRealImage(images, m, node({ arch: 'arm64' }), talos113(SCHEMATIC))).toBeNull();
    expect(locateRealImage(images, m, node(), 'not: [talos')).toBeNull();
    expect(locateRealImage(mkdtempSync(join(root, 'empty-')), m, node(), talos113(SCHEMATIC))).toBeNull();
  });

  it('a directory where the ISO should be is not an image', () => {
    mkdirSync(join(images, 'cache', 'talos', 'v1.13.9', SCHEMATIC, 'nocloud-amd64.iso'), { recursive: true });
    expect(locateRealImage(images, manifest('talos', 'v1.13.9'), node(), talos113(SCHEMATIC))).toBeNull();
  });

  it('Kairos: <version>/<provider>-<provider version>/<flavor|any>-<arch>.iso', () => {
    const m = manifest('kairos', 'v3.5.1 k3s v1.33.4+k3s1');
    const dir = join(images, 'cache', 'kairos', 'v3.5.1', 'k3s-v1.33.4+k3s1');
    expect(locateRealImage(images, m, node(), '#cloud-config\n')).toBeNull();
    const ubuntu = touch(dir, 'ubuntu-24.04-amd64.iso');
    // the only ISO for the arch
    expect(locateRealImage(images, m, node(), '#cloud-config\n')).toEqual({ profile: 'kairos', path: ubuntu });
    expect(locateRealImage(images, m, node({ arch: 'arm64' }), '#cloud-config\n')).toBeNull();
    // several: alphabetically first, with a note; a flavor or any-<arch>.iso settles it
    const alpine = touch(dir, 'alpine-3.21-amd64.iso');
    const several = locateRealImage(images, m, node(), '#cloud-config\n');
    expect(several?.path).toBe(alpine);
    expect(several?.note).toMatch(/several Kairos ISOs/);
    expect(locateRealImage(images, m, node(), '#cloud-config\n', 'ubuntu-24.04')?.path).toBe(ubuntu);
    const any = touch(dir, 'any-amd64.iso');
    expect(locateRealImage(images, m, node(), '#cloud-config\n')).toEqual({ profile: 'kairos', path: any });
    // another provider version is another directory
    expect(locateRealImage(images, manifest('kairos', 'v3.5.1 k3s v1.33.5+k3s1'), node(), '#cloud-config\n')).toBeNull();
  });
});

describe('realImageCacheDir', () => {
  const saved = process.env.EDGEIMG_REAL_IMAGE_DIR;
  afterEach(() => {
    if (saved === undefined) delete process.env.EDGEIMG_REAL_IMAGE_DIR;
    else process.env.EDGEIMG_REAL_IMAGE_DIR = saved;
  });
  it('honours $EDGEIMG_REAL_IMAGE_DIR', () => {
    const d = mkdtempSync(join(root, 'env-'));
    process.env.EDGEIMG_REAL_IMAGE_DIR = d;
    expect(realImageCacheDir('/nonexistent')).toBe(d);
    process.env.EDGEIMG_REAL_IMAGE_DIR = join(d, 'missing');
    expect(realImageCacheDir()).toBeNull();
  });
});

describe('seed-derived guest set-up', () => {
  it('parses installer image references', () => {
    expect(parseInstallerImage(`factory.talos.dev/nocloud-installer/${SCHEMATIC}:v1.13.9`)).toEqual({ schematic: SCHEMATIC, version: 'v1.13.9' });
    expect(parseInstallerImage(`factory.talos.dev/installer/${SCHEMATIC}:v1.14.0-beta.1`)).toEqual({ schematic: SCHEMATIC, version: 'v1.14.0-beta.1' });
    expect(parseInstallerImage(`mirror.example:5000/siderolabs/metal-installer-secureboot/${SCHEMATIC}:v1.13.9`)?.schematic).toBe(SCHEMATIC);
    expect(parseInstallerImage('ghcr.io/siderolabs/installer:v1.13.9')).toBeNull();
    expect(talosInstallerImage(talos114(OTHER))).toBe(`factory.talos.dev/nocloud-installer/${OTHER}:v1.14.2`);
  });

  it('maps the install target to a scratch disk that gets the same device name', () => {
    expect(scratchKindFor(installTarget('talos', talos113(SCHEMATIC)))).toBe('nvme');
    expect(installTarget('talos', talos114(OTHER))).toBe('disk.dev_path == "/dev/sda"');
    expect(scratchKindFor(installTarget('talos', talos114(OTHER)))).toBe('sata-disk');
    expect(scratchKindFor('disk.transport == "nvme"')).toBe('nvme');
    expect(scratchKindFor(installTarget('kairos', '#cloud-config\ninstall:\n  auto: true\n  device: /dev/vda\n'))).toBe('virtio-disk');
    expect(scratchKindFor(installTarget('kairos', '#cloud-config\ninstall:\n  device: auto\n'))).toBe('sata-disk');
    expect(scratchKindFor('/dev/mmcblk0')).toBe('virtio-disk');
  });

  it('plans slirp around the static address of the seed', () => {
    expect(slirpPlan('10.4.12.11/24', '10.4.12.1')).toEqual({ subnet: '10.4.12.0/24', hostAddress: '10.4.12.1', dnsAddress: '10.4.12.3', guestAddress: '10.4.12.11' });
    // the gateway outside the subnet, or the node on .3, moves things around
    expect(slirpPlan('192.168.7.3/28', '10.0.0.1')).toEqual({ subnet: '192.168.7.0/28', hostAddress: '192.168.7.1', dnsAddress: '192.168.7.2', guestAddress: '192.168.7.3' });
    expect(slirpPlan('10.4.12.1/24', '10.4.12.1')).toMatchObject({ hostAddress: '10.4.12.2', dnsAddress: '10.4.12.3' });
    expect(slirpPlan('10.4.12.0/24')).toBeNull();
    expect(slirpPlan('10.4.12.5/31')).toBeNull();
    expect(slirpPlan('nope')).toBeNull();
  });

  it('reads address, gateway and MAC from netplan v2 and v1 network-config', () => {
    const v2 = `version: 2
ethernets:
  primary:
    match:
      macaddress: '52:54:00:04:12:11'
    dhcp4: false
    addresses:
      - 10.4.12.11/24
    routes:
      - to: 0.0.0.0/0
        via: '10.4.12.1'
`;
    expect(guestNetwork(v2, '10.4.12.11')).toEqual({
      subnet: '10.4.12.0/24',
      hostAddress: '10.4.12.1',
      dnsAddress: '10.4.12.3',
      guestAddress: '10.4.12.11',
      macAddress: '52:54:00:04:12:11',
    });
    const v1 = `version: 1
config:
  - type: physical
    name: eth0
    mac_address: "52:54:00:AA:BB:CC"
    subnets:
      - type: static
        address: 172.16.5.20/22
        gateway: 172.16.4.1
`;
    expect(guestNetwork(v1, '172.16.5.20')).toEqual({
      subnet: '172.16.4.0/22',
      hostAddress: '172.16.4.1',
      dnsAddress: '172.16.4.3',
      guestAddress: '172.16.5.20',
      macAddress: '52:54:00:aa:bb:cc',
    });
    expect(guestNetwork(undefined, '10.0.0.5')).toEqual({});
    expect(guestNetwork('version: 2\nethernets:\n  eth0:\n    dhcp4: true\n', '10.0.0.5')).toEqual({});
  });

  it('reads the OS CA from a talosconfig', () => {
    const site = mkdtempSync(join(root, 'site-'));
    expect(readSiteOsCaPem(site)).toBeNull();
    const fake = {
      certs: { os: { crt: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' } },
      admin: { crt: 'c', key: 'k' },
    } as unknown as TalosSecrets;
    writeFileSync(join(site, 'talosconfig'), renderTalosconfig({ context: 's', endpoints: ['10.0.0.1'], nodes: [], secrets: fake }));
    expect(readSiteOsCaPem(site)).toBe(fake.certs.os.crt);
  });
});
