// Conformance: catalogue rules that follow from how the consumers behave.
//
// - Registry fallback. containerd/containerd docs/hosts.md ("server field"): after the listed
//   hosts, containerd falls back to the registry itself unless `server` says otherwise. Talos
//   v1.13.9 internal/pkg/containers/cri/containerd/hosts.go GenerateHosts writes no `server` line
//   unless RegistryMirrorConfig.skipFallback is set (then DisableFallback moves the last
//   endpoint there). k3s (docs.k3s.io "Default Endpoint Fallback") likewise tries the default
//   endpoint last unless --disable-default-registry-endpoint. So an explicit upstream endpoint at
//   the end of a list is redundant, and "no fallback" has to be said with skipFallback.
// - Install disks. The Talos installer (1.14 UnattendedInstallConfig takes the first match) and
//   kairos-agent v2.24.2 (pkg/config/spec.go ReadInstallSpecFromConfig, install.device taken as
//   given) write to the device the config names; /dev/sdX is whatever the kernel enumerated
//   first, and a USB boot or seed stick is an sd device too.
// - NIC matching: see talos-network.test.ts and kairos-network.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import { planFleet } from '../../src/catalogue/index.js';
import { isUpstreamEndpoint } from '../../src/catalogue/resolve.js';
import { main } from '../../src/cli/main.js';
import { renderTalosDocuments } from '../../src/render/talos/index.js';
import { placeholderSecrets } from '../../src/secrets/placeholder.js';
import type { TalosSecrets } from '../../src/secrets/types.js';
import { CatalogueError } from '../../src/util/diagnostics.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';

let copy: CatalogueCopy | undefined;
afterEach(() => {
  copy?.cleanup();
  copy = undefined;
});

describe('registry mirrors and fallback', () => {
  it('drops the explicit upstream at the end of every example mirror list', async () => {
    const { plans } = await planFleet('catalogue');
    for (const p of plans) {
      for (const m of p.registries.mirrors) {
        expect(m.fallback).toBe(true);
        expect(isUpstreamEndpoint(m.registry, m.endpoints[m.endpoints.length - 1]!), `${p.id} ${m.registry}`).toBe(false);
        expect(m.endpoints).toEqual([p.localMirror]);
      }
    }
  });

  it('keeps the list as written and sets Talos skipFallback when the catalogue asks for no fallback', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/fleet.yaml', (t) => t.replace('ghcr.io: ["${site.mirror}", "https://ghcr.io"]', 'ghcr.io: { endpoints: ["${site.mirror}", "https://ghcr.io"], fallback: false }'));
    copy.edit('catalogue/sites/plant-0031.yaml', (t) => t.replace('os: kairos', 'os: talos'));
    copy.edit('catalogue/sites/lab-0001.yaml', (t) => t.replace('os: kairos', 'os: talos'));
    const { plans } = await planFleet(copy.catalogue);
    const site = plans.find((p) => p.id === 'store-0412')!;
    expect(site.registries.mirrors.find((m) => m.registry === 'ghcr.io')).toEqual({ registry: 'ghcr.io', endpoints: ['https://10.4.12.5:5000', 'https://ghcr.io'], fallback: false });
    const docs = renderTalosDocuments(site, site.nodes[0]!, placeholderSecrets('talos') as TalosSecrets);
    const ghcr = docs.find((d) => d.kind === 'RegistryMirrorConfig' && d.name === 'ghcr.io') as any;
    expect(ghcr.skipFallback).toBe(true);
    const docker = docs.find((d) => d.kind === 'RegistryMirrorConfig' && d.name === 'docker.io') as any;
    expect(docker).not.toHaveProperty('skipFallback');
  });

  it('recognises the upstream forms', () => {
    expect(isUpstreamEndpoint('docker.io', 'https://registry-1.docker.io')).toBe(true);
    expect(isUpstreamEndpoint('docker.io', 'https://index.docker.io/v2')).toBe(true);
    expect(isUpstreamEndpoint('ghcr.io', 'https://ghcr.io/')).toBe(true);
    expect(isUpstreamEndpoint('ghcr.io', 'https://10.4.12.5:5000')).toBe(false);
    expect(isUpstreamEndpoint('ghcr.io', 'http://ghcr.io')).toBe(false);
  });
});

describe('install disks that can name a USB stick', () => {
  async function validate(dir: string, ...flags: string[]): Promise<{ code: number; err: string }> {
    let err = '';
    const code = await main(['validate', '--catalogue', dir, ...flags], { out: () => {}, err: (s) => (err += s) });
    return { code, err };
  }

  it('warns at the path\'s line, naming by-path and selectors; --strict makes it an error', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/hardware/ipc-amd64.yaml', (t) => t.replace('path: /dev/nvme0n1', 'path: /dev/sda'));
    const loose = await validate(copy.catalogue);
    expect(loose.code).toBe(0);
    expect(loose.err).toMatch(/hardware\/ipc-amd64\.yaml:\d+:11: warning: hardware class ipc-amd64: install disk \/dev\/sda can name a USB stick .*\/dev\/disk\/by-path\/.*selector/);
    const strict = await validate(copy.catalogue, '--strict');
    expect(strict.code).toBe(1);
    expect(strict.err).toMatch(/hardware\/ipc-amd64\.yaml:\d+:11: hardware class ipc-amd64: install disk \/dev\/sda can name a USB stick.*\(an error in strict mode\)/);
  });

  it('the example fleet validates cleanly in strict mode', async () => {
    const r = await validate('catalogue', '--strict');
    expect(r.code).toBe(0);
    expect(r.err).not.toMatch(/warning/);
  });
});

describe('a selector-matched NIC needs the node MAC', () => {
  it('refuses store-0007 without its MAC, at the node entry', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/sites/store-0007.yaml', (t) => t.replace('  nodes:\n    - { name: cp-1, mac: "00:e0:4c:00:07:11" }\n', ''));
    const err = (await planFleet(copy.catalogue).catch((e: unknown) => e)) as CatalogueError;
    expect(err).toBeInstanceOf(CatalogueError);
    const d = err.diagnostics.find((x) => /needs a mac/.test(x.message))!;
    expect(d.file).toMatch(/profiles\/store-single\.yaml$/);
    expect(d.message).toMatch(/hardware class legacy-amd64 selects its NIC by selector \(driver r8169\)/);
  });
});

