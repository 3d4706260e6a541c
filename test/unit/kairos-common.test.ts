import { describe, expect, it } from 'vitest';
import type { NodePlan, SitePlan } from '../../src/catalogue/plan.js';
import { renderKairosCloudConfig } from '../../src/render/kairos/index.js';
import { prefixToNetmask } from '../../src/render/kairos/network.js';
import { CatalogueError } from '../../src/util/diagnostics.js';
import { k3sAlpineSite, kairosSecrets, renderCloudConfig, stageFile, stageSteps, type RenderedCloudConfig } from '../fixtures/kairos-secrets.js';
import { k0sSite, k3sSite } from '../fixtures/plans.js';

const render = (site: SitePlan, node: NodePlan): RenderedCloudConfig => renderCloudConfig(site, node);

const server = k3sSite.nodes[0]!;
const agent = k3sSite.nodes[1]!;
const controller = k0sSite.nodes[0]!;

describe('Kairos cloud-config, shared parts', () => {
  it('starts with exactly #cloud-config on the first line', () => {
    for (const [site, node] of [[k3sSite, server], [k3sSite, agent], [k0sSite, controller]] as const) {
      const { text } = render(site, node);
      expect(text.split('\n')[0]).toBe('#cloud-config');
    }
  });

  it('installs unattended onto the hardware class disk and reboots', () => {
    expect(render(k3sSite, server).cfg.install).toEqual({ auto: true, device: '/dev/nvme0n1', reboot: true });
    expect(render(k0sSite, controller).cfg.install).toEqual({ auto: true, device: '/dev/mmcblk0', reboot: true });
  });

  it('lets the installer pick the disk when the hardware class only has a selector', () => {
    const site = structuredClone(k3sSite);
    site.nodes[0]!.hardware.disk = { selector: { type: 'nvme' } };
    expect(render(site, site.nodes[0]!).cfg.install.device).toBe('auto');
  });

  it('rejects an install disk that is not a /dev path', () => {
    const site = structuredClone(k3sSite);
    site.nodes[0]!.hardware.disk = { path: 'sda' };
    expect(() => renderKairosCloudConfig(site, site.nodes[0]!, kairosSecrets)).toThrow(CatalogueError);
  });

  it('creates the admin user with the fleet SSH keys and a locked password', () => {
    const { cfg } = render(k3sSite, agent);
    expect(cfg.users).toEqual([
      { name: 'kairos', groups: ['admin'], lock_passwd: true, ssh_authorized_keys: k3sSite.sshKeys },
    ]);
    expect(JSON.stringify(cfg.users)).not.toMatch(/passwd"\s*:\s*"/);
  });

  it('sets the hostname at top level and early in the initramfs stage', () => {
    const r = render(k3sSite, agent);
    expect(r.cfg.hostname).toBe('agent-1');
    expect(stageSteps(r, 'initramfs').find((s) => s.hostname !== undefined)?.hostname).toBe('agent-1');
  });

  it('writes a systemd-networkd static address, gateway, DNS and search domain on systemd flavors', () => {
    const unit = stageFile(render(k3sSite, server), '/etc/systemd/network/00-edgeimg-primary.network', 'initramfs');
    expect(unit?.permissions).toBe(0o644);
    expect(unit?.content).toBe(
      [
        '[Match]',
        'MACAddress=52:54:00:31:00:11',
        '',
        '[Network]',
        'DHCP=no',
        'Address=10.4.12.11/24',
        'Gateway=10.4.12.1',
        'DNS=10.4.12.1',
        'DNS=1.1.1.1',
        'Domains=store-0412.edge.example.com',
        '',
      ].join('\n'),
    );
  });

  it('matches the NIC by a predictable interface name when the node has no MAC', () => {
    const site = structuredClone(k3sSite);
    const node = { ...site.nodes[1]!, mac: undefined, hardware: { ...site.nodes[1]!.hardware, nic: { name: 'enp1s0' } } };
    const unit = stageFile(render(site, node), '/etc/systemd/network/00-edgeimg-primary.network', 'initramfs');
    expect(unit?.content).toContain('[Match]\nName=enp1s0\n');
  });

  it('points systemd-timesyncd at the site NTP servers with yip\'s timesyncd step, in initramfs', () => {
    const steps = stageSteps(render(k3sSite, agent), 'initramfs').filter((s) => s.timesyncd !== undefined);
    expect(steps.map((s) => s.timesyncd)).toEqual([{ NTP: 'time.cloudflare.com' }]);
    expect(render(k3sSite, agent).text).not.toContain('timesyncd.conf.d');
  });

  it('writes a connman service with address, gateway, DNS and NTP on Alpine', () => {
    const alpineServer = k3sAlpineSite.nodes[0]!;
    const svc = stageFile(render(k3sAlpineSite, alpineServer), '/var/lib/connman/edgeimg-primary.config', 'initramfs');
    expect(stageSteps(render(k3sAlpineSite, alpineServer), 'initramfs').some((s) => s.timesyncd)).toBe(false);
    expect(svc?.content).toContain('MAC = 52:54:00:31:00:11\n');
    expect(svc?.content).toContain('IPv4 = 10.4.12.11/255.255.255.0/10.4.12.1\n');
    expect(svc?.content).toContain('Nameservers = 10.4.12.1,1.1.1.1\n');
    expect(svc?.content).toContain('SearchDomains = store-0412.edge.example.com\n');
    expect(svc?.content).toContain('Timeservers = time.cloudflare.com\n');
  });

  it('converts prefix lengths to netmasks', () => {
    expect(prefixToNetmask(24)).toBe('255.255.255.0');
    expect(prefixToNetmask(20)).toBe('255.255.240.0');
    expect(prefixToNetmask(32)).toBe('255.255.255.255');
    expect(prefixToNetmask(0)).toBe('0.0.0.0');
  });

  it('installs the mirror CA bundle into the trust store in the initramfs stage', () => {
    for (const [site, node] of [[k3sSite, agent], [k0sSite, controller]] as const) {
      const step = stageSteps(render(site, node), 'initramfs').find((s) => s.commands?.includes('update-ca-certificates'));
      expect(step?.files).toEqual([
        { path: '/usr/local/share/ca-certificates/edgeimg-mirror.crt', permissions: 0o644, owner: 0, group: 0, content: site.registries.caBundle },
      ]);
    }
  });

  it('uses the distribution trust store on openSUSE flavors', () => {
    const site = structuredClone(k3sSite);
    site.kairos!.flavor = 'opensuse-leap-15.6';
    const step = stageSteps(render(site, site.nodes[1]!), 'initramfs').find((s) => s.commands?.length)!;
    expect(step.files?.[0]?.path).toBe('/etc/pki/trust/anchors/edgeimg-mirror.crt');
    expect(step.commands).toEqual(['update-ca-certificates']);
  });

  it('refuses Red Hat family flavors, whose NetworkManager and chronyd ignore what we write', () => {
    for (const flavor of ['rockylinux-9', 'fedora-40', 'almalinux-9']) {
      const site = structuredClone(k3sSite);
      site.kairos!.flavor = flavor;
      expect(() => renderKairosCloudConfig(site, site.nodes[0]!, kairosSecrets)).toThrow(/NetworkManager and chronyd/);
    }
  });

  it('skips the trust step when the site has no mirror CA', () => {
    const site = structuredClone(k3sSite);
    site.registries.caBundle = '';
    const r = render(site, site.nodes[1]!);
    expect(stageSteps(r, 'initramfs').some((s) => s.commands?.length)).toBe(false);
    expect(r.text).not.toContain('ca_file');
  });

  it('rejects an unknown flavor with a catalogue diagnostic', () => {
    const site = structuredClone(k3sSite);
    site.kairos!.flavor = 'gentoo-2024';
    expect(() => renderKairosCloudConfig(site, site.nodes[0]!, kairosSecrets)).toThrow(/flavor "gentoo-2024"/);
  });

  it('writes file modes in octal', () => {
    expect(render(k0sSite, controller).text).toMatch(/permissions: 0600\n/);
  });

  it('renders the same bytes twice', () => {
    for (const [site, node] of [[k3sSite, server], [k3sSite, agent], [k0sSite, controller]] as const) {
      expect(render(structuredClone(site), structuredClone(node)).text).toBe(render(site, node).text);
    }
  });

  it('never uses the provider-kairos p2p blocks', () => {
    for (const [site, node] of [[k3sSite, server], [k3sSite, agent], [k0sSite, controller]] as const) {
      const { cfg } = render(site, node);
      expect(cfg).not.toHaveProperty('p2p');
      expect(cfg).not.toHaveProperty('kairos');
    }
  });
});
