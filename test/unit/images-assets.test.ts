// Which boot image assets a hardware class needs: Image Factory paths for Talos
// (siderolabs/image-factory docs/api.md, internal/profile/profile.go ParseFromPath) and Kairos
// release asset names (kairos-io/kairos-docs content/en/docs/Reference/artifacts.md).
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';

import { planFleet } from '../../src/catalogue/index.js';
import { imageNeeds, parseKairosImage, type ImageNeed } from '../../src/images/index.js';
import { schematicId, schematicYaml } from '../../src/render/talos/schematic.js';
import { CatalogueError } from '../../src/util/diagnostics.js';
import { k0sSite, k3sSite, nucAmd64, sbcArm64, talosSite } from '../fixtures/plans.js';
import { repoRoot } from '../helpers/catalogue.js';

const names = (n: ImageNeed): string[] => n.assets.map((a) => a.name);

describe('Talos assets of a hardware class', () => {
  it('are the nocloud ISO and netboot files of the class schematic at the site version', () => {
    const [need] = imageNeeds([talosSite]);
    const id = schematicId(nucAmd64.factory);
    expect(need!.talos).toMatchObject({ schematicId: id, schematic: schematicYaml(nucAmd64.factory), platform: 'nocloud' });
    expect(need!.talos!.installerImage).toBe(`factory.talos.dev/nocloud-installer/${id}:v1.13.4`);
    expect(need!.assets.map((a) => [a.use, a.name, a.path, a.url])).toEqual([
      ['boot', 'nocloud-amd64.iso', `talos/v1.13.4/${id}/nocloud-amd64.iso`, `https://factory.talos.dev/image/${id}/v1.13.4/nocloud-amd64.iso`],
      ['netboot', 'kernel-amd64', `talos/v1.13.4/${id}/kernel-amd64`, `https://factory.talos.dev/image/${id}/v1.13.4/kernel-amd64`],
      ['netboot', 'initramfs-amd64.xz', `talos/v1.13.4/${id}/initramfs-amd64.xz`, `https://factory.talos.dev/image/${id}/v1.13.4/initramfs-amd64.xz`],
      ['netboot', 'cmdline-nocloud-amd64', `talos/v1.13.4/${id}/cmdline-nocloud-amd64`, `https://factory.talos.dev/image/${id}/v1.13.4/cmdline-nocloud-amd64`],
    ]);
  });

  it('are the SBC disk image, and no ISO, for a class with an overlay', () => {
    const site = { ...structuredClone(talosSite), nodes: talosSite.nodes.map((n) => ({ ...n, hardware: sbcArm64 })) };
    const [need] = imageNeeds([site]);
    expect(names(need!)).toEqual(['nocloud-arm64.raw.xz']);
    expect(need!.assets[0]!.use).toBe('boot');
    expect(need!.notes.join()).toContain('SBC overlay rpi_generic');
  });

  it('use the --factory base URL, without doubling slashes', () => {
    const [need] = imageNeeds([talosSite], { factory: 'http://127.0.0.1:8080/', kairosReleases: 'x' });
    expect(need!.assets[0]!.url).toMatch(/^http:\/\/127\.0\.0\.1:8080\/image\/[0-9a-f]{64}\/v1\.13\.4\/nocloud-amd64\.iso$/);
  });
});

describe('Kairos assets of a hardware class', () => {
  it('are the release ISO, kernel, initrd and squashfs, with the provider version spelled with "+"', () => {
    const [need] = imageNeeds([k3sSite]);
    const stem = 'kairos-ubuntu-24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4+k3s1';
    expect(need!.version).toBe('v3.5.1-k3sv1.33.4+k3s1');
    expect(need!.kairos!.stem).toBe(stem);
    expect(need!.assets.map((a) => [a.kind, a.use, a.name, a.url])).toEqual([
      ['iso', 'boot', `${stem}.iso`, `https://github.com/kairos-io/kairos/releases/download/v3.5.1/${stem}.iso`],
      ['kernel', 'netboot', `${stem}-kernel`, `https://github.com/kairos-io/kairos/releases/download/v3.5.1/${stem}-kernel`],
      ['initramfs', 'netboot', `${stem}-initrd`, `https://github.com/kairos-io/kairos/releases/download/v3.5.1/${stem}-initrd`],
      ['rootfs', 'netboot', `${stem}.squashfs`, `https://github.com/kairos-io/kairos/releases/download/v3.5.1/${stem}.squashfs`],
    ]);
    expect(need!.assets.every((a) => a.path === `kairos/v3.5.1/${a.name}`)).toBe(true);
    expect(need!.notes).toEqual([]);
  });

  it('are an import-only device image for a device class (no release download exists)', () => {
    const [need] = imageNeeds([k0sSite]);
    const stem = 'kairos-ubuntu-24.04-standard-arm64-rpi4-v3.5.1-k0sv1.33.4+k0s.0';
    expect(need!.assets).toEqual([
      {
        kind: 'disk-image',
        use: 'boot',
        name: `${stem}.img`,
        path: `kairos/v3.5.1/${stem}.img`,
        source: 'quay.io/kairos/ubuntu:24.04-standard-arm64-rpi4-v3.5.1-k0sv1.33.4-k0s.0-img',
      },
    ]);
  });

  it('follow the site and say so when the class base image is for another release', () => {
    const hw = { ...nucAmd64, kairosBaseImage: 'quay.io/kairos/ubuntu:24.04-standard-amd64-generic-v3.4.2-k3sv1.32.3-k3s1' };
    const site = { ...structuredClone(k3sSite), nodes: k3sSite.nodes.map((n) => ({ ...n, hardware: hw })) };
    const [need] = imageNeeds([site]);
    expect(need!.kairos!.stem).toBe('kairos-ubuntu-24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4+k3s1');
    expect(need!.notes.join()).toMatch(/differs from what its sites run: Kairos v3\.4\.2 \(site: v3\.5\.1\), k3s v1\.32\.3\+k3s1 \(site: k3s v1\.33\.4\+k3s1\)/);
  });

  it('are the standard generic release of the site flavor when the class names no base image', () => {
    const { kairosBaseImage: _drop, ...hw } = nucAmd64;
    const site = { ...structuredClone(k3sSite), nodes: k3sSite.nodes.map((n) => ({ ...n, hardware: hw })) };
    expect(imageNeeds([site])[0]!.kairos!.stem).toBe('kairos-ubuntu-24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4+k3s1');
  });

  it('refuses a flavor that cannot name a file, at the site', () => {
    const site = { ...structuredClone(k3sSite), kairos: { ...k3sSite.kairos!, flavor: 'ubuntu/../../etc' } };
    expect(() => imageNeeds([site])).toThrow(CatalogueError);
  });
});

describe('parseKairosImage', () => {
  it.each([
    ['quay.io/kairos/ubuntu:24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4-k3s1', { flavor: 'ubuntu-24.04', variant: 'standard', arch: 'amd64', device: 'generic', version: 'v3.5.1', provider: 'k3s', providerVersion: 'v1.33.4+k3s1' }],
    ['quay.io/kairos/ubuntu:24.04-standard-arm64-rpi4-v3.5.1-k0sv1.33.4-k0s.0', { device: 'rpi4', provider: 'k0s', providerVersion: 'v1.33.4+k0s.0' }],
    ['quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.5.1', { flavor: 'opensuse-leap-15.6', variant: 'core', version: 'v3.5.1' }],
    ['quay.io/kairos/ubuntu:22.04-standard-arm64-nvidia-jetson-agx-orin-v3.5.1-k3sv1.33.4-k3s1', { device: 'nvidia-jetson-agx-orin', version: 'v3.5.1' }],
  ])('takes %s apart', (ref, expected) => {
    expect(parseKairosImage(ref)).toMatchObject(expected);
  });

  it.each(['registry.example/custom/kairos:latest', 'quay.io/kairos/ubuntu@sha256:abc', 'quay.io/kairos/ubuntu'])('is null for %s', (ref) => {
    expect(parseKairosImage(ref)).toBeNull();
  });
});

describe('the example catalogue', () => {
  it('needs one entry per (class, OS, version) its sites use, and nothing for unused combinations', async () => {
    const { plans } = await planFleet(join(repoRoot, 'catalogue'));
    const needs = imageNeeds(plans);
    expect(needs.map((n) => [n.hardwareClass, n.os, n.version, n.sites, n.nodes])).toEqual([
      ['ipc-amd64', 'kairos', 'v3.5.1-k3sv1.33.4+k3s1', ['plant-0031'], 3],
      ['legacy-amd64', 'talos', 'v1.13.9', ['store-0007'], 1],
      ['nuc12-amd64', 'talos', 'v1.13.9', ['store-0412'], 3],
      ['rpi4-arm64', 'kairos', 'v3.5.1-k0sv1.33.4+k0s.0', ['lab-0001'], 1],
    ]);
    // the schematic of store-0412's class, as docs/real-images.md shows it
    expect(needs[2]!.talos!.schematicId).toBe('fb79be8885b2ec0c41fb38a6867e28b8e76fd73df9eadbb3bd39adb0a1eb306d');
  });

  it('aggregates sites sharing a class and version into one entry', () => {
    const other = { ...structuredClone(talosSite), id: 'store-0999' };
    const needs = imageNeeds([talosSite, other]);
    expect(needs).toHaveLength(1);
    expect(needs[0]!.sites).toEqual(['store-0412', 'store-0999']);
    expect(needs[0]!.nodes).toBe(6);
  });
});
