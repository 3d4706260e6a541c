// Conformance: Talos rules our machine configs and talosconfig depend on.

import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderTalosDocuments } from '../../src/render/talos/index.js';
import { installDiskCel } from '../../src/render/talos/docs/runtime.js';
import { renderTalosconfig } from '../../src/secrets/talosconfig.js';
import { placeholderSecrets } from '../../src/secrets/placeholder.js';
import type { TalosSecrets } from '../../src/secrets/types.js';
import { talosSite114 } from '../fixtures/plans.js';
import { exampleNodes, talosDocs } from './helpers.js';

const secrets = placeholderSecrets('talos') as TalosSecrets;
const cp114 = talosSite114.nodes.find((n) => n.role === 'controlplane')!;

describe('Talos 1.14 KubeEtcdEncryptionConfig keeps the 1.13 key names', () => {
  // siderolabs/talos v1.13.9 internal/app/machined/pkg/controllers/k8s/internal/k8stemplates/apiserver.go,
  // APIServerEncryptionConfig: the secretbox key from cluster.secretboxEncryptionSecret is named
  // "key2" (aescbc is "key1"). v1.14.0 pkg/machinery/config/generate/kubernetes.go keeps "key2" so
  // that a cluster re-rendered with the 1.14 contract can still decrypt its Secrets.
  it('names the secretbox key key2, holding the site secretbox secret', () => {
    const doc = renderTalosDocuments(talosSite114, cp114, secrets).find((d) => d.kind === 'KubeEtcdEncryptionConfig') as any;
    const providers = doc.config.resources[0].providers;
    expect(providers).toEqual([{ secretbox: { keys: [{ name: 'key2', secret: secrets.secretboxEncryptionSecret }] } }]);
    expect(doc.config.resources[0].resources).toEqual(['secrets']);
  });
});

describe('Talos 1.14 install-disk selector carries the guards 1.13 adds itself', () => {
  // siderolabs/talos v1.13.9 pkg/machinery/config/types/v1alpha1/v1alpha1_provider.go,
  // InstallConfig.DiskMatchExpression: every v1alpha1 disk selector is ANDed with
  // `disk.transport != ""` (no DM devices), `!disk.readonly` and `!disk.cdrom`.
  // 1.14's UnattendedInstallConfig diskSelector.match is used as written, and the first disk it
  // matches is taken, so the boot ISO or the cidata seed CD-ROM could be chosen without them.
  const guards = ['disk.transport != ""', '!disk.readonly', '!disk.cdrom'];

  it.each([
    ['a path', { path: '/dev/nvme0n1' }],
    ['a selector', { selector: { type: 'nvme' as const, size: '>= 100GB' } }],
  ])('for %s, the match is the three guards ANDed with the parenthesised target', (_what, disk) => {
    const cel = installDiskCel(disk);
    const terms = cel.split(' && ');
    expect(terms.slice(0, 3)).toEqual(guards);
    // the target is one parenthesised term, so a `||` inside it cannot escape the guards
    expect(cel.slice(guards.join(' && ').length)).toMatch(/^ && \(.*\)$/);
  });

  it('every example 1.14 rendering uses a guarded selector', () => {
    const docs = renderTalosDocuments(talosSite114, cp114, secrets);
    const install = docs.find((d) => d.kind === 'UnattendedInstallConfig') as any;
    expect(install.provisioning.diskSelector.match.startsWith(guards.join(' && '))).toBe(true);
  });
});

describe('talosconfig holds endpoints, not nodes', () => {
  // siderolabs/talos v1.13.9 pkg/machinery/config/generate/talosconfig.go, Input.Talosconfig:
  // `talosctl gen config` writes the endpoint list and no nodes. cmd/talosctl/pkg/talos/global/
  // client.go takes a context's `nodes` as the default target, and cmd/talosctl/cmd/talos/
  // bootstrap.go refuses to run with more than one node ("command \"bootstrap\" is not supported
  // with multiple nodes"), as does cmd/talosctl/pkg/talos/helpers/checks.go for kubeconfig.
  it('a built multi-control-plane talosconfig has endpoints and no nodes', async () => {
    const { build } = await import('../../src/build/build.js');
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'edgeimg-conf-talosconfig-'));
    try {
      await build({ catalogueDir: 'catalogue', outDir: join(dir, 'out'), secretsDir: join(dir, 'secrets'), sites: ['store-0412'] });
      const cfg = parseYaml(readFileSync(join(dir, 'out', 'store-0412', 'talosconfig'), 'utf8'));
      const ctx = cfg.contexts[cfg.context];
      expect(ctx.endpoints).toEqual(['10.4.12.11', '10.4.12.12', '10.4.12.13']);
      expect(ctx).not.toHaveProperty('nodes');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('renderTalosconfig leaves nodes out when given none', () => {
    const out = parseYaml(renderTalosconfig({ context: 's', endpoints: ['10.0.0.1'], nodes: [], secrets }));
    expect(out.contexts.s).not.toHaveProperty('nodes');
  });
});

describe('Talos NoCloud reads our user-data as a machine config', () => {
  // siderolabs/talos v1.13.9 internal/app/machined/pkg/runtime/v1alpha1/platform/nocloud/nocloud.go,
  // Nocloud.Configuration: user-data whose first line is `#cloud-config` is ignored (no config
  // source); `#include` fetches a URL. Anything else is the machine config.
  it('no example Talos user-data starts with #cloud-config or #include', async () => {
    for (const { rendered } of await exampleNodes((s) => s.os === 'talos')) {
      const first = rendered.userData.split('\n', 1)[0]!.trim();
      expect(first).not.toBe('#cloud-config');
      expect(first).not.toBe('#include');
      expect(talosDocs(rendered.userData)[0]).toMatchObject({ version: 'v1alpha1' });
    }
  });

  // metadata.go MetadataConfig: `hostname`, `local-hostname` (InternalDNS), `instance-id`;
  // nocloud.go ParseMetadata uses hostname, else local-hostname, through HostnameSpecSpec.ParseFQDN.
  it('meta-data carries instance-id and a local-hostname Talos can parse', async () => {
    for (const { node, rendered } of await exampleNodes((s) => s.os === 'talos')) {
      const meta = parseYaml(rendered.metaData);
      expect(Object.keys(meta).sort()).toEqual(['instance-id', 'local-hostname']);
      expect(meta['local-hostname']).toBe(node.hostname);
      expect(node.hostname).toMatch(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
    }
  });
});
