import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { crc32, gzipStored } from '../../src/render/kairos/gzip.js';
import {
  K0S_BOOTSTRAP_MANIFEST_DIR,
  K0S_CERTS_DIR,
  K0S_CONFIG,
  K0S_CONTAINERD_DROPIN,
  K0S_PKI_DIR,
  K0S_TOKEN_FILE,
} from '../../src/render/kairos/k0s.js';
import { CatalogueError } from '../../src/util/diagnostics.js';
import { kairosSecrets, k0sWorkerSite, renderCloudConfig, stageFile } from '../fixtures/kairos-secrets.js';
import { k0sSite } from '../fixtures/plans.js';

const controller = k0sWorkerSite.nodes[0]!;
const worker = k0sWorkerSite.nodes[1]!;

function decodeJoinToken(token: string): Record<string, any> {
  return YAML.parse(gunzipSync(Buffer.from(token, 'base64')).toString('utf8'));
}

describe('deterministic gzip for k0s join tokens', () => {
  it('computes the standard CRC-32', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('round-trips through zlib, across stored-block boundaries', () => {
    for (const size of [0, 1, 65535, 65536, 140000]) {
      const data = Buffer.alloc(size, 0x61);
      expect(Buffer.from(gunzipSync(gzipStored(data))).equals(data)).toBe(true);
    }
  });
});

describe('Kairos k0s provider', () => {
  it('pre-seeds the cluster CA into the controller PKI dir, key private', () => {
    const r = renderCloudConfig(k0sWorkerSite, controller);
    expect(stageFile(r, `${K0S_PKI_DIR}/ca.crt`)?.content).toBe(kairosSecrets.ca.crt);
    const key = stageFile(r, `${K0S_PKI_DIR}/ca.key`);
    expect(key?.content).toBe(kairosSecrets.ca.key);
    expect(key?.permissions).toBe(0o600);
    expect(stageFile(renderCloudConfig(k0sWorkerSite, worker), `${K0S_PKI_DIR}/ca.key`)).toBeUndefined();
  });

  it('ships the bootstrap token as a Secret in the controller manifest dir', () => {
    const file = stageFile(renderCloudConfig(k0sWorkerSite, controller), `${K0S_BOOTSTRAP_MANIFEST_DIR}/bootstrap-token-abcdef.yaml`);
    const secret = YAML.parse(file!.content);
    expect(secret.kind).toBe('Secret');
    expect(secret.type).toBe('bootstrap.kubernetes.io/token');
    expect(secret.metadata).toEqual({ name: 'bootstrap-token-abcdef', namespace: 'kube-system' });
    const data = Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    expect(data['token-id']).toBe('abcdef');
    expect(data['token-secret']).toBe('0123456789abcdef');
    expect(data['usage-bootstrap-authentication']).toBe('true');
    expect(data).not.toHaveProperty('expiration');
  });

  it('runs a single schedulable controller as controller+worker without taints', () => {
    const args: string[] = renderCloudConfig(k0sSite, k0sSite.nodes[0]!).cfg.k0s.args;
    expect(args).toEqual([
      `--config=${K0S_CONFIG}`,
      '--enable-worker',
      '--no-taints',
      '--labels=country=de,region=eu-central,tier=gold',
      '--kubelet-extra-args=--node-ip=10.4.12.11',
    ]);
  });

  it('runs a plain controller when the control plane is not schedulable', () => {
    const site = structuredClone(k0sWorkerSite);
    site.cluster.allowSchedulingOnControlPlanes = false;
    const r = renderCloudConfig(site, site.nodes[0]!);
    expect(r.cfg.k0s.args).toEqual([`--config=${K0S_CONFIG}`]);
    expect(stageFile(r, K0S_CONTAINERD_DROPIN)).toBeUndefined();
  });

  it('configures the API address and the site CIDRs in k0s.yaml', () => {
    const conf = YAML.parse(stageFile(renderCloudConfig(k0sSite, k0sSite.nodes[0]!), K0S_CONFIG)!.content);
    expect(conf.spec.api).toEqual({ address: '10.4.12.11', sans: ['10.4.12.11'] });
    expect(conf.spec.network).toEqual({ podCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/12' });
  });

  it('gives workers a join token that decodes to the server URL, cluster CA and site token', () => {
    const r = renderCloudConfig(k0sWorkerSite, worker);
    expect(r.cfg['k0s-worker']).toEqual({
      enabled: true,
      args: [`--token-file=${K0S_TOKEN_FILE}`, '--labels=country=de,region=eu-central,tier=gold', '--kubelet-extra-args=--node-ip=10.4.12.21'],
    });
    const file = stageFile(r, K0S_TOKEN_FILE)!;
    expect(file.permissions).toBe(0o600);
    const kubeconfig = decodeJoinToken(file.content);
    expect(kubeconfig['current-context']).toBe('k0s');
    expect(kubeconfig.clusters[0].cluster.server).toBe('https://10.4.12.11:6443');
    expect(Buffer.from(kubeconfig.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).toBe(kairosSecrets.ca.crt);
    expect(kubeconfig.contexts[0].context.user).toBe('kubelet-bootstrap');
    expect(kubeconfig.users[0]).toEqual({ name: 'kubelet-bootstrap', user: { token: 'abcdef.0123456789abcdef' } });
  });

  it('keeps the join token in the worker config and out of the controller config', () => {
    expect(stageFile(renderCloudConfig(k0sWorkerSite, controller), K0S_TOKEN_FILE)).toBeUndefined();
    expect(renderCloudConfig(k0sWorkerSite, worker).cfg).not.toHaveProperty('k0s');
  });

  it('points containerd at hosts.toml files that keep the endpoint order', () => {
    for (const node of [controller, worker]) {
      const r = renderCloudConfig(k0sWorkerSite, node);
      expect(stageFile(r, K0S_CONTAINERD_DROPIN)!.content).toBe(
        `version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${K0S_CERTS_DIR}"\n`,
      );
      const hosts = stageFile(r, `${K0S_CERTS_DIR}/docker.io/hosts.toml`)!.content;
      expect(hosts.startsWith('server = "https://registry-1.docker.io"\n')).toBe(true);
      const order = [...hosts.matchAll(/^\[host\."([^"]+)"\]$/gm)].map((m) => m[1]);
      expect(order).toEqual(['https://10.4.12.5:5000', 'https://registry-1.docker.io']);
      expect(hosts).toContain('[host."https://10.4.12.5:5000"]\n  capabilities = ["pull", "resolve"]\n  ca = "/usr/local/share/ca-certificates/edgeimg-mirror.crt"\n');
      expect(stageFile(r, `${K0S_CERTS_DIR}/ghcr.io/hosts.toml`)!.content).toContain('server = "https://ghcr.io"');
    }
  });

  it('uses the containerd 2 config dialect from k0s 1.36 on', () => {
    const site = structuredClone(k0sWorkerSite);
    site.kairos!.providerVersion = 'v1.36.1+k0s.0';
    expect(stageFile(renderCloudConfig(site, site.nodes[1]!), K0S_CONTAINERD_DROPIN)!.content).toBe(
      `version = 3\n\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "${K0S_CERTS_DIR}"\n`,
    );
  });

  it('refuses sites it cannot join offline: several controllers, or a VIP', () => {
    const two = structuredClone(k0sWorkerSite);
    two.nodes[1]!.role = 'controlplane';
    expect(() => renderCloudConfig(two, two.nodes[0]!)).toThrow(CatalogueError);
    const vip = structuredClone(k0sSite);
    vip.network.vip = '10.4.12.10';
    expect(() => renderCloudConfig(vip, vip.nodes[0]!)).toThrow(/VIP/);
  });

  it('renders identical worker configs twice, join token included', () => {
    expect(renderCloudConfig(structuredClone(k0sWorkerSite), structuredClone(worker)).text).toBe(renderCloudConfig(k0sWorkerSite, worker).text);
  });
});
