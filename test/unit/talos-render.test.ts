import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';

import type { NodePlan, SitePlan } from '../../src/catalogue/plan.js';
import {
  documentKind,
  installerImage,
  renderTalosDocuments,
  serializeTalosConfig,
  talosContract,
  type TalosDocument,
} from '../../src/render/talos/index.js';
import { nucAmd64, sbcArm64, talosSite, talosSite114 } from '../fixtures/plans.js';
import { talosSecretsFixture } from '../fixtures/talos-secrets.js';

const secrets = talosSecretsFixture();
const cpOf = (site: SitePlan): NodePlan => site.nodes.find((n) => n.role === 'controlplane')!;
const workerOf = (site: SitePlan): NodePlan => site.nodes.find((n) => n.role === 'worker')!;
const kinds = (docs: TalosDocument[]): string[] => docs.map(documentKind);
const ofKind = (docs: TalosDocument[], kind: string): TalosDocument[] => docs.filter((d) => documentKind(d) === kind);
const only = (docs: TalosDocument[], kind: string): Record<string, any> => {
  const found = ofKind(docs, kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as Record<string, any>;
};
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Every string in the tree, plus its base64 decoding when it decodes to text. */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') {
    out.push(value);
    if (/^[A-Za-z0-9+/]+=*$/.test(value) && value.length >= 16) out.push(Buffer.from(value, 'base64').toString('utf8'));
  } else if (Array.isArray(value)) value.forEach((v) => strings(v, out));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => strings(v, out));
  return out;
}

describe.each([
  ['1.13', talosSite],
  ['1.14', talosSite114],
])('Talos %s', (minor, site) => {
  const cp = renderTalosDocuments(site, cpOf(site), secrets);
  const worker = renderTalosDocuments(site, workerOf(site), secrets);

  it('puts the v1alpha1 Config first and every other document after it', () => {
    for (const docs of [cp, worker]) {
      expect(docs[0]).toMatchObject({ version: 'v1alpha1' });
      expect(docs[0]).not.toHaveProperty('kind');
      expect(kinds(docs).slice(1)).not.toContain('v1alpha1');
      for (const d of docs.slice(1)) expect(d.apiVersion).toBe('v1alpha1');
    }
  });

  it('orders documents as the version contract lists their kinds', () => {
    const order = talosContract(minor).documents.map((b) => b.kind);
    const positions = kinds(cp).map((k) => order.indexOf(k));
    expect(positions).not.toContain(-1);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });

  it('gives control planes the CA keys', () => {
    const v1 = cp[0] as Record<string, any>;
    expect(v1.machine.type).toBe('controlplane');
    expect(v1.machine.ca).toEqual({ crt: b64(secrets.certs.os.crt), key: b64(secrets.certs.os.key) });
    expect(v1.cluster.etcd.ca).toEqual({ crt: b64(secrets.certs.etcd.crt), key: b64(secrets.certs.etcd.key) });
    const all = strings(cp);
    for (const pem of [secrets.certs.k8s.key, secrets.certs.k8sAggregator.key, secrets.certs.k8sServiceAccount.key]) {
      expect(all).toContain(pem);
    }
    expect(all.filter((s) => s.includes('PRIVATE KEY')).length).toBeGreaterThanOrEqual(5);
  });

  it('gives workers certificates and tokens but no private key material', () => {
    const v1 = worker[0] as Record<string, any>;
    expect(v1.machine.type).toBe('worker');
    expect(v1.machine.ca).toEqual({ crt: b64(secrets.certs.os.crt) });
    expect(v1.machine.token).toBe(secrets.trustdToken);
    expect(v1.cluster.token).toBe(secrets.bootstrapToken);
    const leaked = strings(worker).filter((s) => s.includes('PRIVATE KEY') || s === secrets.secretboxEncryptionSecret);
    expect(leaked).toEqual([]);
    expect(JSON.stringify(worker)).not.toMatch(/"(key|privateKey|issuingCA|secretboxEncryptionSecret)"/);
    expect(strings(worker)).toContain(secrets.certs.k8s.crt); // as base64 (1.13) or PEM (1.14)
  });

  it('configures the primary link by selector alias, the VIP on control planes only, resolvers and NTP', () => {
    for (const [docs, isCp] of [[cp, true], [worker, false]] as const) {
      const node = isCp ? cpOf(site) : workerOf(site);
      expect(only(docs, 'HostnameConfig')).toMatchObject({ hostname: node.hostname });
      const alias = only(docs, 'LinkAliasConfig');
      // a node with a known MAC is pinned to that NIC; otherwise the hardware class selector applies
      expect(alias.selector.match).toBe(node.mac ? `mac(link.permanent_addr) == "${node.mac}"` : 'glob("e1000e", link.driver)');
      expect(only(docs, 'LinkConfig')).toMatchObject({
        name: alias.name,
        addresses: [{ address: `${node.ip}/24` }],
        routes: [{ gateway: '10.4.12.1' }],
      });
      expect(ofKind(docs, 'Layer2VIPConfig')).toEqual(isCp ? [{ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: '10.4.12.10', link: alias.name }] : []);
      expect(only(docs, 'ResolverConfig')).toMatchObject({
        nameservers: [{ address: '10.4.12.1' }, { address: '1.1.1.1' }],
        searchDomains: { domains: ['store-0412.edge.example.com'] },
      });
      expect(only(docs, 'TimeSyncConfig')).toMatchObject({ ntp: { servers: ['time.cloudflare.com'] } });
    }
  });

  it('writes one mirror document per upstream registry and one TLS document per mirror host', () => {
    expect(ofKind(cp, 'RegistryMirrorConfig')).toEqual([
      {
        apiVersion: 'v1alpha1',
        kind: 'RegistryMirrorConfig',
        name: 'docker.io',
        endpoints: [{ url: 'https://10.4.12.5:5000' }, { url: 'https://registry-1.docker.io' }],
      },
      { apiVersion: 'v1alpha1', kind: 'RegistryMirrorConfig', name: 'ghcr.io', endpoints: [{ url: 'https://10.4.12.5:5000' }] },
    ]);
    expect(ofKind(cp, 'RegistryTLSConfig')).toEqual([
      { apiVersion: 'v1alpha1', kind: 'RegistryTLSConfig', name: '10.4.12.5:5000', ca: site.registries.caBundle },
    ]);
    const noCa = { ...site, registries: { ...site.registries, caBundle: '' } };
    expect(ofKind(renderTalosDocuments(noCa, cpOf(noCa), secrets), 'RegistryTLSConfig')).toEqual([]);
  });

  it('serialises deterministically, v1alpha1 first, and reads back as the same documents', () => {
    const a = serializeTalosConfig(cp);
    expect(serializeTalosConfig(renderTalosDocuments(site, cpOf(site), secrets))).toBe(a);
    expect(a.startsWith('version: v1alpha1\n')).toBe(true);
    expect(a.split('\n---\n')).toHaveLength(cp.length);
    const back = parseAllDocuments(a).map((d) => d.toJS() as TalosDocument);
    expect(back).toEqual(cp);
    // Long base64 stays on one line.
    expect(a).toContain(`crt: ${b64(secrets.certs.os.crt)}\n`);
  });

  it('emits no persist field', () => {
    expect(cp[0]).not.toHaveProperty('persist');
  });
});

describe('Talos 1.13 document model', () => {
  const cp = renderTalosDocuments(talosSite, cpOf(talosSite), secrets);
  const worker = renderTalosDocuments(talosSite, workerOf(talosSite), secrets);

  it('emits the 1.13 set of documents', () => {
    expect(kinds(cp)).toEqual([
      'v1alpha1', 'HostnameConfig', 'LinkAliasConfig', 'LinkConfig', 'Layer2VIPConfig', 'ResolverConfig', 'TimeSyncConfig',
      'RegistryMirrorConfig', 'RegistryMirrorConfig', 'RegistryTLSConfig',
    ]);
    expect(kinds(worker)).toEqual(kinds(cp).filter((k) => k !== 'Layer2VIPConfig'));
  });

  it('uses no field the 1.13 schema dropped', () => {
    for (const docs of [cp, worker]) {
      const m = docs[0]!.machine as Record<string, unknown>;
      for (const dropped of ['network', 'registries', 'time', 'env']) expect(m).not.toHaveProperty(dropped);
      expect(m.install).not.toHaveProperty('extraKernelArgs');
      expect(m.features).not.toHaveProperty('rbac');
      expect(m.features).not.toHaveProperty('apidCheckExtKeyUsage');
    }
  });

  it('keeps kubelet, install and cluster settings in v1alpha1', () => {
    const v1 = cp[0] as Record<string, any>;
    expect(v1.machine.kubelet).toEqual({
      image: 'ghcr.io/siderolabs/kubelet:v1.34.1',
      defaultRuntimeSeccompProfileEnabled: true,
      disableManifestsDirectory: true,
      nodeIP: { validSubnets: ['10.4.12.0/24'] },
    });
    expect(v1.machine.install).toEqual({ disk: '/dev/nvme0n1', image: installerImage(talosSite, nucAmd64), wipe: false, grubUseUKICmdline: true });
    expect(v1.machine.certSANs).toEqual(['10.4.12.11', '10.4.12.10']);
    expect(v1.machine.features).toEqual({ diskQuotaSupport: true, kubePrism: { enabled: true, port: 7445 }, hostDNS: { enabled: true, forwardKubeDNSToHost: true } });
    expect(v1.machine.nodeLabels).toEqual({ 'node.kubernetes.io/exclude-from-external-load-balancers': '' });
    expect(v1.cluster).toMatchObject({
      id: secrets.clusterId,
      secret: secrets.clusterSecret,
      controlPlane: { endpoint: 'https://10.4.12.10:6443' },
      clusterName: 'store-0412',
      network: { dnsDomain: 'cluster.local', podSubnets: ['10.244.0.0/16'], serviceSubnets: ['10.96.0.0/12'] },
      token: secrets.bootstrapToken,
      secretboxEncryptionSecret: secrets.secretboxEncryptionSecret,
      ca: { crt: b64(secrets.certs.k8s.crt), key: b64(secrets.certs.k8s.key) },
      aggregatorCA: { crt: b64(secrets.certs.k8sAggregator.crt), key: b64(secrets.certs.k8sAggregator.key) },
      serviceAccount: { key: b64(secrets.certs.k8sServiceAccount.key) },
      apiServer: { image: 'registry.k8s.io/kube-apiserver:v1.34.1', certSANs: ['10.4.12.10'] },
      controllerManager: { image: 'registry.k8s.io/kube-controller-manager:v1.34.1' },
      proxy: { image: 'registry.k8s.io/kube-proxy:v1.34.1' },
      scheduler: { image: 'registry.k8s.io/kube-scheduler:v1.34.1' },
      discovery: { enabled: true, registries: { kubernetes: { disabled: true }, service: {} } },
      allowSchedulingOnControlPlanes: true,
    });
    const w = worker[0] as Record<string, any>;
    expect(Object.keys(w.cluster)).toEqual(['id', 'secret', 'controlPlane', 'clusterName', 'network', 'token', 'ca', 'discovery']);
    expect(w.machine.certSANs).toEqual(['10.4.12.21']);
    expect(w.machine).not.toHaveProperty('nodeLabels');
  });

  it('selects the install disk by selector when the hardware class has no path', () => {
    const hw = { ...nucAmd64, disk: { selector: { size: '>= 100GB', type: 'nvme' as const } } };
    const site = { ...talosSite, nodes: talosSite.nodes.map((n) => ({ ...n, hardware: hw })) };
    const install = (renderTalosDocuments(site, site.nodes[0]!, secrets)[0] as Record<string, any>).machine.install;
    expect(install).toMatchObject({ diskSelector: { size: '>= 100GB', type: 'nvme' } });
    expect(install).not.toHaveProperty('disk');
  });
});

describe('Talos 1.14 document model', () => {
  const cp = renderTalosDocuments(talosSite114, cpOf(talosSite114), secrets);
  const worker = renderTalosDocuments(talosSite114, workerOf(talosSite114), secrets);
  const shared = ['DiscoveryServiceConfig', 'DiscoveryIdentityConfig', 'UnattendedInstallConfig', 'SecurityProfileConfig', 'FilesystemTrimConfig'];
  const network = ['HostnameConfig', 'LinkAliasConfig', 'LinkConfig', 'ResolverConfig', 'TimeSyncConfig', 'RegistryMirrorConfig', 'RegistryMirrorConfig', 'RegistryTLSConfig'];
  const kubeAll = ['KubeNetworkConfig', 'KubeAPIServerCAConfig', 'KubeClusterConfig', 'KubeletConfig', 'KubeNodeConfig', 'KubePrismConfig'];

  it('emits the Kube* documents and UnattendedInstallConfig', () => {
    expect(kinds(worker)).toEqual(['v1alpha1', ...shared, ...network, ...kubeAll]);
    expect(kinds(cp)).toEqual([
      'v1alpha1', ...shared, ...network.slice(0, 3), 'Layer2VIPConfig', ...network.slice(3), ...kubeAll,
      'KubeAggregatorCAConfig', 'KubeAdmissionControlConfig', 'KubeAuditPolicyConfig', 'KubeAuthenticationConfig',
      'KubeAuthorizerConfig', 'KubeAuthorizerConfig', 'KubeEtcdEncryptionConfig', 'KubeServiceAccountConfig',
      'KubeAPIServerConfig', 'KubeControllerManagerConfig', 'KubeSchedulerConfig', 'KubeProxyConfig',
      'KubeFlannelCNIConfig', 'KubeCoreDNSConfig',
    ]);
  });

  it('keeps only what 1.14 still accepts in v1alpha1', () => {
    expect(cp[0]).toEqual({
      version: 'v1alpha1',
      debug: false,
      machine: {
        type: 'controlplane',
        token: secrets.trustdToken,
        ca: { crt: b64(secrets.certs.os.crt), key: b64(secrets.certs.os.key) },
        certSANs: ['10.4.12.11', '10.4.12.10'],
        features: { diskQuotaSupport: true },
      },
      cluster: { token: secrets.bootstrapToken, etcd: { ca: { crt: b64(secrets.certs.etcd.crt), key: b64(secrets.certs.etcd.key) } } },
    });
    expect((worker[0] as Record<string, any>).cluster).toEqual({ token: secrets.bootstrapToken });
  });

  it('uses the kind Talos registers for unattended install, with the install disk and installer', () => {
    expect(only(cp, 'UnattendedInstallConfig')).toEqual({
      apiVersion: 'v1alpha1',
      kind: 'UnattendedInstallConfig',
      installer: { image: installerImage(talosSite114, nucAmd64) },
      provisioning: { diskSelector: { match: 'disk.transport != "" && !disk.readonly && !disk.cdrom && (disk.dev_path == "/dev/nvme0n1")' }, wipe: false },
    });
  });

  it('moves cluster identity, endpoint, network, images and CAs into their documents', () => {
    expect(only(cp, 'DiscoveryIdentityConfig')).toMatchObject({ clusterID: secrets.clusterId, clusterSecret: secrets.clusterSecret });
    expect(only(cp, 'KubeClusterConfig')).toMatchObject({ clusterName: 'store-0412', endpoint: 'https://10.4.12.10:6443' });
    expect(only(cp, 'KubeNetworkConfig')).toMatchObject({ dnsDomain: 'cluster.local', podSubnets: ['10.244.0.0/16'], serviceSubnets: ['10.96.0.0/12'] });
    expect(only(cp, 'KubeletConfig')).toMatchObject({ image: 'ghcr.io/siderolabs/kubelet:v1.35.0' });
    expect(only(cp, 'KubeAPIServerConfig')).toMatchObject({ image: 'registry.k8s.io/kube-apiserver:v1.35.0', certExtraSANs: ['10.4.12.10'] });
    expect(only(cp, 'KubeControllerManagerConfig')).toMatchObject({ image: 'registry.k8s.io/kube-controller-manager:v1.35.0' });
    expect(only(cp, 'KubeSchedulerConfig')).toMatchObject({ image: 'registry.k8s.io/kube-scheduler:v1.35.0' });
    expect(only(cp, 'KubeProxyConfig')).toMatchObject({ image: 'registry.k8s.io/kube-proxy:v1.35.0' });
    expect(only(cp, 'KubeAPIServerCAConfig')).toMatchObject({ issuingCA: { cert: secrets.certs.k8s.crt, key: secrets.certs.k8s.key } });
    expect(only(worker, 'KubeAPIServerCAConfig')).toEqual({ apiVersion: 'v1alpha1', kind: 'KubeAPIServerCAConfig', acceptedCAs: [secrets.certs.k8s.crt] });
    expect(only(cp, 'KubeServiceAccountConfig')).toMatchObject({ issuer: { privateKey: secrets.certs.k8sServiceAccount.key, issuerURL: 'https://10.4.12.10:6443' } });
    expect(JSON.stringify(only(cp, 'KubeEtcdEncryptionConfig'))).toContain(secrets.secretboxEncryptionSecret);
    expect(only(cp, 'ResolverConfig')).toMatchObject({ hostDNS: { enabled: true, forwardKubeDNSToHost: true } });
  });

  it('expresses allowSchedulingOnControlPlanes as the absence of the control-plane taint', () => {
    expect(only(cp, 'KubeNodeConfig')).toEqual({
      apiVersion: 'v1alpha1',
      kind: 'KubeNodeConfig',
      nodeIP: { validSubnets: ['10.4.12.0/24'] },
      labels: { 'node-role.kubernetes.io/control-plane': '', 'node.kubernetes.io/exclude-from-external-load-balancers': '' },
    });
    const tainted = { ...talosSite114, cluster: { ...talosSite114.cluster, allowSchedulingOnControlPlanes: false } };
    expect(only(renderTalosDocuments(tainted, cpOf(tainted), secrets), 'KubeNodeConfig').taints).toEqual({ 'node-role.kubernetes.io/control-plane': ':NoSchedule' });
    expect(only(worker, 'KubeNodeConfig')).toEqual({ apiVersion: 'v1alpha1', kind: 'KubeNodeConfig', nodeIP: { validSubnets: ['10.4.12.0/24'] } });
  });
});

describe('hardware variants', () => {
  it('configures a NIC chosen by name directly, without an alias, and the SBC overlay installer', () => {
    const site = { ...talosSite, nodes: talosSite.nodes.map((n) => ({ ...n, hardware: sbcArm64 })) };
    const docs = renderTalosDocuments(site, site.nodes[0]!, secrets);
    expect(ofKind(docs, 'LinkAliasConfig')).toEqual([]);
    expect(only(docs, 'LinkConfig').name).toBe('eth0');
    expect(only(docs, 'Layer2VIPConfig').link).toBe('eth0');
    expect((docs[0] as Record<string, any>).machine.install.image).toBe(
      'factory.talos.dev/nocloud-installer/ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9:v1.13.4',
    );
  });

  it('turns NIC and disk selectors into CEL expressions', () => {
    const hw = {
      ...nucAmd64,
      disk: { selector: { model: 'WDC*', size: '>= 100GB', type: 'ssd' as const } },
      nic: { selector: { hardwareAddr: '52:54:00:AA:BB:CC', busPath: '0000:00:1f.6' } },
    };
    const site = { ...talosSite114, nodes: talosSite114.nodes.map((n) => ({ ...n, hardware: hw })) };
    const docs = renderTalosDocuments(site, site.nodes[2]!, secrets);
    expect(only(docs, 'LinkAliasConfig').selector.match).toBe('glob("52:54:00:aa:bb:cc", mac(link.hardware_addr)) && glob("0000:00:1f.6", link.bus_path)');
    expect(only(docs, 'UnattendedInstallConfig').provisioning.diskSelector.match).toBe(
      'disk.transport != "" && !disk.readonly && !disk.cdrom && (disk.model.matches("^WDC.*$") && disk.size >= 100u * GB && !disk.rotational)',
    );
  });

  it('omits the VIP document when the site has no VIP', () => {
    const site = { ...talosSite, network: { ...talosSite.network, vip: undefined }, cluster: { ...talosSite.cluster, endpoint: 'https://10.4.12.11:6443' } };
    const docs = renderTalosDocuments(site, site.nodes[0]!, secrets);
    expect(ofKind(docs, 'Layer2VIPConfig')).toEqual([]);
    expect((docs[0] as Record<string, any>).machine.certSANs).toEqual(['10.4.12.11']);
  });

  it('quotes label values that a YAML 1.1 reader (Go yaml.v3) would not read as strings', () => {
    const site = { ...talosSite114, nodes: talosSite114.nodes.map((n) => ({ ...n, labels: { since: '2024-01-01', ha: 'yes', rack: '10' } })) };
    const text = serializeTalosConfig(renderTalosDocuments(site, site.nodes[2]!, secrets));
    expect(text).toContain("labels:\n    ha: 'yes'\n    rack: '10'\n    since: '2024-01-01'\n");
  });

  it('does not let patches to the documents reach back into the plan', () => {
    const site = structuredClone(talosSite);
    const docs = renderTalosDocuments(site, site.nodes[0]!, secrets);
    ((docs[0]!.cluster as Record<string, any>).network.podSubnets as string[]).push('10.99.0.0/16');
    (only(docs, 'TimeSyncConfig').ntp.servers as string[]).push('ntp.example');
    expect(site).toEqual(talosSite);
  });

  it('supports exactly Talos 1.13 and 1.14', () => {
    expect(talosContract('1.13').multidocKubernetes).toBe(false);
    expect(talosContract('1.14').multidocKubernetes).toBe(true);
    expect(() => talosContract('1.15')).toThrow(/not supported/);
    const v115 = { ...talosSite, talos: { version: 'v1.15.0', minor: '1.15' as never, kubernetesVersion: 'v1.36.0' } };
    expect(() => renderTalosDocuments(v115, v115.nodes[0]!, secrets)).toThrow(/not supported/);
  });

  it('refuses a site whose Talos minor does not match its version', () => {
    const bad = { ...talosSite, talos: { ...talosSite.talos!, minor: '1.14' as const } };
    expect(() => renderTalosDocuments(bad, bad.nodes[0]!, secrets)).toThrow(/does not match/);
  });
});
