// Static addressing for the node's primary NIC, written as files in yip's initramfs stage so
// that the network manager finds them when it first starts (Kairos docs, Advanced/networking:
// "Static IP" writes /etc/systemd/network/*.network or /var/lib/connman/*.config in initramfs).
// The step runs on every boot, so it converges whatever the persistence of the path.
//
// The NIC is matched by MAC: installed Kairos boots with net.ifnames=1 (kairos-init v0.5.16
// pkg/bundled/bundled.go, grub baseCmd), so kernel names such as eth0 do not exist, and
// kairos-init's own 20-dhcp.network (Name=en*) would take the NIC with DHCP. Our file sorts
// first, and networkd applies the first file that matches a link.

import type { NodePlan, SitePlan } from '../../catalogue/plan.js';
import type { FlavorTraits } from './flavor.js';
import { connmanIni, systemdIni, type IniSection } from './text.js';
import { rootFile, type YipFile } from './types.js';

/** Sorts before distribution defaults such as 20-*.network: networkd applies the first match. */
export const NETWORKD_FILE = '/etc/systemd/network/00-edgeimg-primary.network';
export const CONNMAN_FILE = '/var/lib/connman/edgeimg-primary.config';

export function networkFiles(site: SitePlan, node: NodePlan, traits: FlavorTraits): YipFile[] {
  if (traits.network === 'connman') return [rootFile(CONNMAN_FILE, connmanService(site, node))];
  return [rootFile(NETWORKD_FILE, networkdUnit(site, node))];
}

/**
 * NTP for systemd-timesyncd, as yip's own `timesyncd` step: it writes
 * /etc/systemd/timesyncd.conf.d/10-yip.conf and creates that directory with a traversable
 * mode. A `files` entry would not do: yip creates a missing parent directory with the file's
 * mode plus owner-execute (0744 for 0644), which the unprivileged timesyncd cannot enter
 * (yip v1.16.5 pkg/plugins/files.go writeFile; see test/conformance/kairos-yip.test.ts).
 * connman flavors carry the servers in the service file instead.
 */
export function timesyncdSettings(site: SitePlan, traits: FlavorTraits): Record<string, string> | undefined {
  if (traits.network === 'connman' || site.network.ntp.length === 0) return undefined;
  return { NTP: site.network.ntp.join(' ') };
}

/** The node's MAC, else the class's (predictable) interface name; resolve refuses anything else. */
function networkdMatch(node: NodePlan): Array<[string, string]> {
  if (node.mac !== undefined) return [['MACAddress', node.mac]];
  const name = node.hardware.nic.name;
  if (name === undefined) throw new Error(`internal error: Kairos node ${node.name} has neither a MAC nor a NIC name`);
  return [['Name', name]];
}

function networkdUnit(site: SitePlan, node: NodePlan): string {
  const network: Array<[string, string]> = [
    ['DHCP', 'no'],
    ['Address', `${node.ip}/${node.prefix}`],
    ['Gateway', site.network.gateway],
    ...site.network.dns.map((d): [string, string] => ['DNS', d]),
  ];
  if (site.network.searchDomains.length > 0) network.push(['Domains', site.network.searchDomains.join(' ')]);
  const sections: IniSection[] = [
    { name: 'Match', entries: networkdMatch(node) },
    { name: 'Network', entries: network },
  ];
  return systemdIni(sections);
}

/**
 * connman provisioning file (connman doc/config-format.txt). connman can bind a service to a MAC
 * or a device name only; with a driver or bus-path selector it applies to the ethernet service.
 * connman keeps the clock itself, so the NTP servers go in Timeservers.
 */
function connmanService(site: SitePlan, node: NodePlan): string {
  const nic = node.hardware.nic;
  const entries: Array<[string, string]> = [['Type', 'ethernet']];
  if (node.mac !== undefined) entries.push(['MAC', node.mac]);
  else if (nic.name !== undefined) entries.push(['DeviceName', nic.name]);
  entries.push(['IPv4', `${node.ip}/${prefixToNetmask(node.prefix)}/${site.network.gateway}`], ['IPv6', 'off']);
  if (site.network.dns.length > 0) entries.push(['Nameservers', site.network.dns.join(',')]);
  if (site.network.searchDomains.length > 0) entries.push(['SearchDomains', site.network.searchDomains.join(',')]);
  if (site.network.ntp.length > 0) entries.push(['Timeservers', site.network.ntp.join(',')]);
  return connmanIni([{ name: 'service_edgeimg_primary', entries }]);
}

export function prefixToNetmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((shift) => (bits >>> shift) & 0xff).join('.');
}
