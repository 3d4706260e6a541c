import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { k3sServerToken } from '../../src/render/kairos/index.js';
import { K3S_REGISTRIES } from '../../src/render/kairos/k3s.js';
import { KUBE_VIP_MANIFEST } from '../../src/render/kairos/kube-vip.js';
import { kairosSecrets, k3sHaSite, k3sNoVipSite, renderCloudConfig, stageFile } from '../fixtures/kairos-secrets.js';
import { k3sSite } from '../fixtures/plans.js';

const [server1, agent1, agent2] = k3sSite.nodes;
const server2 = k3sHaSite.nodes.find((n) => n.name === 'server-2')!;

describe('Kairos k3s provider', () => {
  it('derives a non-bootstrap-shaped server token from the site token', () => {
    expect(k3sServerToken(kairosSecrets)).toBe('abcdef0123456789abcdef');
    expect(k3sServerToken(kairosSecrets)).not.toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  });

  it('gives every node the token from the site secrets', () => {
    for (const node of k3sHaSite.nodes) {
      const { cfg } = renderCloudConfig(k3sHaSite, node);
      const block = cfg.k3s ?? cfg['k3s-agent'];
      expect(block.env.K3S_TOKEN).toBe('abcdef0123456789abcdef');
    }
  });

  it('starts the cluster on the first server only', () => {
    const first = renderCloudConfig(k3sHaSite, server1!).cfg.k3s;
    expect(first.enabled).toBe(true);
    expect(first.args[0]).toBe('--cluster-init');
    expect(first.args.some((a: string) => a.startsWith('--server'))).toBe(false);
    const second = renderCloudConfig(k3sHaSite, server2).cfg.k3s;
    expect(second.args).not.toContain('--cluster-init');
    expect(second.args[0]).toBe('--server=https://10.4.12.10:6443');
  });

  it('joins through the VIP when the site has one, else through the first server', () => {
    expect(renderCloudConfig(k3sSite, agent1!).cfg['k3s-agent'].env.K3S_URL).toBe('https://10.4.12.10:6443');
    expect(renderCloudConfig(k3sNoVipSite, k3sNoVipSite.nodes[1]!).cfg['k3s-agent'].env.K3S_URL).toBe('https://10.4.12.11:6443');
  });

  it('runs agents through the k3s-agent block with their own address and name', () => {
    const { cfg } = renderCloudConfig(k3sSite, agent2!);
    expect(cfg).not.toHaveProperty('k3s');
    expect(cfg['k3s-agent']).toEqual({
      enabled: true,
      args: ['--node-name=agent-2', '--node-ip=10.4.12.22', '--node-label=country=de', '--node-label=region=eu-central', '--node-label=tier=gold'],
      env: { K3S_TOKEN: 'abcdef0123456789abcdef', K3S_URL: 'https://10.4.12.10:6443' },
    });
  });

  it('configures servers with node IP, VIP SAN and the site CIDRs', () => {
    const args: string[] = renderCloudConfig(k3sSite, server1!).cfg.k3s.args;
    expect(args).toContain('--node-ip=10.4.12.11');
    expect(args).toContain('--tls-san=10.4.12.10');
    expect(args).toContain('--cluster-cidr=10.42.0.0/16');
    expect(args).toContain('--service-cidr=10.43.0.0/16');
    expect(args.some((a) => a.includes(' '))).toBe(false);
    expect(args.some((a) => a.startsWith('--node-taint'))).toBe(false);
  });

  it('taints servers when the control plane is not schedulable', () => {
    const site = structuredClone(k3sSite);
    site.cluster.allowSchedulingOnControlPlanes = false;
    expect(renderCloudConfig(site, site.nodes[0]!).cfg.k3s.args).toContain('--node-taint=node-role.kubernetes.io/control-plane:NoSchedule');
  });

  it('deploys kube-vip for the VIP on servers only, and not without a VIP', () => {
    const manifest = stageFile(renderCloudConfig(k3sSite, server1!), KUBE_VIP_MANIFEST, 'initramfs');
    const docs = YAML.parseAllDocuments(manifest!.content).map((d) => d.toJS());
    const ds = docs.find((d) => d.kind === 'DaemonSet');
    const env = ds.spec.template.spec.containers[0].env as Array<{ name: string; value?: string }>;
    expect(env.find((e) => e.name === 'address')?.value).toBe('10.4.12.10');
    expect(env.find((e) => e.name === 'cp_enable')?.value).toBe('true');
    expect(stageFile(renderCloudConfig(k3sSite, agent1!), KUBE_VIP_MANIFEST)).toBeUndefined();
    expect(stageFile(renderCloudConfig(k3sNoVipSite, k3sNoVipSite.nodes[0]!), KUBE_VIP_MANIFEST)).toBeUndefined();
    expect(renderCloudConfig(k3sSite, server1!).cfg).not.toHaveProperty('kubevip');
  });

  it('writes the same kube-vip manifest on every server', () => {
    const a = stageFile(renderCloudConfig(k3sHaSite, server1!), KUBE_VIP_MANIFEST)!.content;
    const b = stageFile(renderCloudConfig(k3sHaSite, server2), KUBE_VIP_MANIFEST)!.content;
    expect(b).toBe(a);
  });

  it('lists registry mirror endpoints in order and trusts the mirror CA for TLS hosts', () => {
    for (const node of [server1!, agent1!]) {
      const reg = YAML.parse(stageFile(renderCloudConfig(k3sSite, node), K3S_REGISTRIES, 'initramfs')!.content);
      expect(reg.mirrors['docker.io'].endpoint).toEqual(['https://10.4.12.5:5000', 'https://registry-1.docker.io']);
      expect(reg.mirrors['ghcr.io'].endpoint).toEqual(['https://10.4.12.5:5000']);
      expect(reg.configs).toEqual({ '10.4.12.5:5000': { tls: { ca_file: '/usr/local/share/ca-certificates/edgeimg-mirror.crt' } } });
    }
  });

  it('writes no registries file when the site has no mirrors', () => {
    const site = structuredClone(k3sSite);
    site.registries.mirrors = [];
    expect(stageFile(renderCloudConfig(site, site.nodes[1]!), K3S_REGISTRIES)).toBeUndefined();
  });
});
