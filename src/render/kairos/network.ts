// Static addressing for the node's primary NIC, written as files in yip's initramfs stage so
// that the network manager finds them when it first starts (Kairos docs, Advanced/networking:
// "Static IP" writes /etc/systemd/network/*.network or /var/lib/connman/*.config in initramfs).
// /etc is an overlay that Kairos discards on reboot, so the step runs on every boot.

import type { NodePlan, SitePlan } from '../../catalogue/plan.js';
import type { FlavorTraits } from './flavor.js';
import { connmanIni, systemdIni, type IniSection } from './text.js';
import { rootFile, type YipFile } from './types.js';

/** Sorts before distribution defaults such as 20-*.network: networkd applies the first match. */
export const NETWORKD_FILE = '/etc/systemd/network/00-edgeimg-primary.network';
export const CONNMAN_FILE = '/var/lib/connman/edgeimg-primary.config';
export const TIMESYNCD_FILE = '/etc/systemd/timesyncd.conf.d/edgeimg.conf';

export function networkFiles(site: SitePlan, node: NodePlan, traits: FlavorTraits): YipFile[] {
  if (traits.network === 'connman') return [rootFile(CONNMAN_FILE, connmanService(site, node))];
  const files = [rootFile(NETWORKD_FILE, networkdUnit(site, node))];
  if (site.network.ntp.length > 0) {
    files.push(rootFile(TIMESYNCD_FILE, systemdIni([{ name: 'Time', entries: [['NTP', site.network.ntp.join(' ')]] }])));
  }
  return files;
}

/**
 * How to find the primary NIC, most specific first: the node's MAC, the hardware class's
 * interface name, then its selector. networkd ANDs the [Match] keys it is given.
 */
function networkdMatch(node: NodePlan): Array<[string, string]> {
  const nic = node.hardware.nic;
  if (node.mac !== undefined) return [['MACAddress', node.mac]];
  if (nic.name !== undefined) return [['Name', nic.name]];
  const match: Array<[string, string]> = [];
  if (nic.selector?.hardwareAddr !== undefined) match.push(['MACAddress', nic.selector.hardwareAddr]);
  if (nic.selector?.driver !== undefined) match.push(['Driver', nic.selector.driver]);
  // Path= matches udev's ID_PATH (e.g. pci-0000:00:1f.6); a glob keeps the bus address as given.
  if (nic.selector?.busPath !== undefined) match.push(['Path', `*${nic.selector.busPath}*`]);
  return match.length > 0 ? match : [['Type', 'ether']];
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
  const mac = node.mac ?? nic.selector?.hardwareAddr;
  if (mac !== undefined) entries.push(['MAC', mac]);
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
