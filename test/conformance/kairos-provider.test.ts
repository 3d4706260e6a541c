// Conformance: provider-kairos v2.13.4 (kairos-sdk v0.9.4) starting k3s or k0s from our blocks.
//
// - internal/provider/config/config.go, K3s/K0s.IsEnabled: `enabled` must decode to true; a
//   missing key (or a typo such as `enable`) leaves the block disabled, silently.
// - internal/role/p2p/k8s.go, NewK8sNodeWithDetector: the first enabled block in the order
//   k3s, k3s-agent, k0s, k0s-worker decides the node's role.
// - internal/provider/bootstrap.go, oneTimeBootstrap: runs `<bin> <role> <args joined by " ">`
//   and writes `env` to the service env file; kairos-sdk v0.9.4 machine/openrc/unit.go
//   (ServiceUnit).OverrideCmd is k3s-only and fails with "no k3s binary found (?)" on OpenRC,
//   so k0s never starts on Alpine.

import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderKairosCloudConfig } from '../../src/render/kairos/index.js';
import { CatalogueError } from '../../src/util/diagnostics.js';
import { kairosSecrets } from '../fixtures/kairos-secrets.js';
import { k0sSite, k3sSite } from '../fixtures/plans.js';
import { exampleNodes } from './helpers.js';
import { blockProviderKairosStarts, providerBlockRuns } from './models/kairos.js';

const ROLE_BLOCK = { k3s: { controlplane: 'k3s', worker: 'k3s-agent' }, k0s: { controlplane: 'k0s', worker: 'k0s-worker' } } as const;

describe('provider-kairos enabled rule', () => {
  it('every example Kairos node has exactly its role\'s block, enabled with the boolean true', async () => {
    for (const { site, node, rendered } of await exampleNodes((s) => s.os === 'kairos')) {
      const cfg = parseYaml(rendered.userData, { version: '1.1' }) as Record<string, unknown>;
      const want = ROLE_BLOCK[site.kairos!.provider][node.role];
      expect(providerBlockRuns(cfg[want]), `${site.id}/${node.name}`).toBe(true);
      expect(blockProviderKairosStarts(cfg)).toBe(want);
      expect(rendered.userData).toMatch(new RegExp(`^${want}:\\n  enabled: true$`, 'm'));
    }
  });

  it('args are single tokens: provider-kairos joins them with spaces into the command line', async () => {
    for (const { site, rendered } of await exampleNodes((s) => s.os === 'kairos')) {
      const cfg = parseYaml(rendered.userData, { version: '1.1' }) as Record<string, any>;
      const block = cfg[ROLE_BLOCK[site.kairos!.provider].controlplane] ?? cfg[ROLE_BLOCK[site.kairos!.provider].worker];
      for (const a of block.args) expect(a).not.toMatch(/\s/);
    }
  });

  it('the model: a missing, misspelt or quoted enabled does not start the block', () => {
    expect(providerBlockRuns({ args: [] })).toBe(false);
    expect(providerBlockRuns({ enable: true })).toBe(false);
    expect(providerBlockRuns({ enabled: 'true' })).toBe('decode-error');
    expect(providerBlockRuns({ enabled: true })).toBe(true);
  });
});

describe('OpenRC (Alpine) cannot run k0s through provider-kairos', () => {
  it('refuses Alpine + k0s with a diagnostic that says why', () => {
    const site = structuredClone(k0sSite);
    site.kairos!.flavor = 'alpine-3.21';
    let err: unknown;
    try {
      renderKairosCloudConfig(site, site.nodes[0]!, kairosSecrets);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CatalogueError);
    expect((err as CatalogueError).diagnostics[0]!.message).toMatch(/k0s on Alpine .* not supported: on OpenRC provider-kairos cannot start k0s/);
  });

  it('still renders Alpine + k3s, which OpenRC can start', () => {
    const site = structuredClone(k3sSite);
    site.kairos!.flavor = 'alpine-3.21';
    expect(() => renderKairosCloudConfig(site, site.nodes[0]!, kairosSecrets)).not.toThrow();
  });
});
