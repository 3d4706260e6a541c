import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import type { HardwarePlan, NodePlan, SitePlan } from '../../src/catalogue/plan.js';
import {
  renderTalosDocuments,
  talosSchemaPath,
  validateTalosDocuments,
  type TalosDocument,
  type TalosMinor,
} from '../../src/render/talos/index.js';
import { packageRoot } from '../../src/util/paths.js';
import { nucAmd64, sbcArm64, talosSite, talosSite114 } from '../fixtures/plans.js';
import { talosSecretsFixture } from '../fixtures/talos-secrets.js';

// The sha256 values of the upstream files, as recorded in schemas/talos/SOURCE.md.
const UPSTREAM_SHA256: Record<TalosMinor, string> = {
  '1.13': '3729ac38813c92a35d3159444402d9e7955b5b67aa28303969d5e1d1fa9d2d1d',
  '1.14': '9727a9c856e865aa927e122eb93c25019ec09664ad38c91364acca7c369cbb3a',
};
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('shipped Talos schemas', () => {
  it.each(['1.13', '1.14'] as const)('v%s is loaded from the package and is the upstream file byte for byte', (minor) => {
    const ours = talosSchemaPath(minor);
    expect(ours).toBe(join(packageRoot(), 'schemas', 'talos', `v${minor}`, 'config.schema.json'));
    expect(sha256(ours)).toBe(UPSTREAM_SHA256[minor]);
  });
});

const secrets = talosSecretsFixture();

const selectorHardware: HardwarePlan = {
  ...nucAmd64,
  name: 'selector-amd64',
  disk: { selector: { size: '>= 100GB', type: 'nvme', model: 'Samsung*' } },
  nic: { selector: { hardwareAddr: '52:54:00:AA:BB:CC', driver: 'igc', busPath: '0000:00:1f.6' } },
};

function withHardware(site: SitePlan, hw: HardwarePlan): SitePlan {
  return { ...site, nodes: site.nodes.map((n): NodePlan => ({ ...n, hardware: hw })) };
}

function withoutVip(site: SitePlan): SitePlan {
  const first = site.nodes[0]!;
  return {
    ...site,
    network: { ...site.network, vip: undefined },
    cluster: { ...site.cluster, endpoint: `https://${first.ip}:6443`, allowSchedulingOnControlPlanes: false },
    nodes: [first, { ...site.nodes[2]!, labels: { 'edge.example.com/zone': 'till-3', tier: 'gold' } }],
  };
}

const SITES: Array<[string, SitePlan]> = [];
for (const base of [talosSite, talosSite114]) {
  const v = base.talos!.minor;
  SITES.push([`${v} nuc (nic selector, disk path)`, base]);
  SITES.push([`${v} selector hardware`, withHardware(base, selectorHardware)]);
  SITES.push([`${v} arm64 SBC overlay (nic by name)`, withHardware(base, sbcArm64)]);
  SITES.push([`${v} no VIP, tainted control plane, labelled worker`, withoutVip(base)]);
}

describe('rendered documents validate against the upstream schema', () => {
  for (const [name, site] of SITES) {
    for (const node of site.nodes) {
      it(`${name}: ${node.name} (${node.role})`, () => {
        const docs = renderTalosDocuments(site, node, secrets);
        expect(docs.length).toBeGreaterThan(5);
        expect(validateTalosDocuments(docs, site.talos!.minor)).toEqual([]);
      });
    }
  }
});

describe('validation failures', () => {
  const cp = talosSite.nodes[0]!;

  it('reports an unknown field with its path', () => {
    const docs = renderTalosDocuments(talosSite, cp, secrets);
    const link = docs.findIndex((d) => d.kind === 'LinkConfig');
    docs[link] = { ...docs[link]!, mtuu: 1500 };
    (docs[0]!.machine as Record<string, unknown>).kubelett = {};
    const errors = validateTalosDocuments(docs, '1.13');
    expect(errors).toContainEqual({ index: 0, kind: 'v1alpha1', path: '/machine/kubelett', message: expect.stringContaining('unknown field') });
    expect(errors).toContainEqual({ index: link, kind: 'LinkConfig', path: '/mtuu', message: expect.stringContaining('unknown field "mtuu"') });
    expect(errors).toHaveLength(2);
  });

  it('rejects a v1.13 config against v1.14, at the fields 1.14 moved out of v1alpha1', () => {
    const v113 = renderTalosDocuments(talosSite, cp, secrets);
    const errors = validateTalosDocuments(v113, '1.14');
    const paths = errors.filter((e) => e.index === 0).map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining(['/machine/kubelet', '/machine/install', '/cluster/clusterName', '/cluster/controlPlane', '/cluster/ca', '/machine/features/hostDNS']),
    );
  });

  it('rejects a v1.14 document kind in v1.13', () => {
    const v114 = renderTalosDocuments(talosSite114, cp, secrets);
    const errors = validateTalosDocuments(v114, '1.13');
    expect(errors).toContainEqual(expect.objectContaining({ kind: 'KubeletConfig', path: '/kind', message: 'Talos 1.13 has no document of kind "KubeletConfig"' }));
  });

  it('reports a wrong value with the allowed ones', () => {
    const errors = validateTalosDocuments([{ version: 'v1alpha1', machine: { type: 'init' } }], '1.13');
    expect(errors).toEqual([{ index: 0, kind: 'v1alpha1', path: '/machine/type', message: 'must be one of "controlplane", "worker"' }]);
  });

  it('does not strip persist: edgeimg never emits it, and the schema does not know it', () => {
    const docs = renderTalosDocuments(talosSite, cp, secrets);
    expect(docs[0]).not.toHaveProperty('persist');
    const errors = validateTalosDocuments([{ ...docs[0]!, persist: true }], '1.13');
    expect(errors).toEqual([expect.objectContaining({ path: '/persist' })]);
  });
});

describe('upstream kind-enum bugs', () => {
  const unattended: TalosDocument = {
    apiVersion: 'v1alpha1',
    kind: 'UnattendedInstallConfig',
    installer: { image: 'factory.talos.dev/nocloud-installer/x:v1.14.0' },
    provisioning: { diskSelector: { match: 'disk.dev_path == "/dev/sda"' }, wipe: false },
  };

  it('accepts UnattendedInstallConfig (the kind Talos registers) although the 1.14 schema spells it UnattendedInstall', () => {
    expect(validateTalosDocuments([unattended], '1.14')).toEqual([]);
  });

  it('still validates the body of the aliased document', () => {
    const bad = { ...unattended, installer: { image: 'x', disk: '/dev/sda' } };
    expect(validateTalosDocuments([bad], '1.14')).toEqual([
      { index: 0, kind: 'UnattendedInstallConfig', path: '/installer/disk', message: expect.stringContaining('unknown field') },
    ]);
  });

  it('does not change the caller\'s document', () => {
    const doc = structuredClone(unattended);
    validateTalosDocuments([doc], '1.14');
    expect(doc).toEqual(unattended);
  });

  it('does not invent UnattendedInstallConfig for 1.13, whose schema has no such document', () => {
    expect(validateTalosDocuments([unattended], '1.13')).toEqual([
      expect.objectContaining({ kind: 'UnattendedInstallConfig', message: 'Talos 1.13 has no document of kind "UnattendedInstallConfig"' }),
    ]);
  });

  it.each(['1.13', '1.14'] as const)('accepts KubeSpanEndpointsConfig in %s (schema says KubeSpanEndpoints)', (minor) => {
    const doc = { apiVersion: 'v1alpha1', kind: 'KubeSpanEndpointsConfig', extraAnnouncedEndpoints: ['192.0.2.1:51820'] };
    expect(validateTalosDocuments([doc], minor)).toEqual([]);
  });
});
