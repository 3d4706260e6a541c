// proxyDHCP + TFTP for `edgeimg serve`, delegated to dnsmasq: edgeimg never answers DHCP itself.
//
// A store already runs a DHCP server nobody may change. PXE firmware therefore gets its address
// from that server and its boot information from a second, "proxy" DHCP server (PXE spec 2.1,
// proxyDHCP) on the technician's laptop: dnsmasq with `dhcp-range=<subnet>,proxy`, which also
// serves the iPXE binaries over TFTP. This module only GENERATES that dnsmasq configuration;
// docs/pxe.md tells the technician how to run it (`dnsmasq --conf-file=FILE --no-daemon`).
//
// The chain:  firmware PXE --DHCP(store)+proxyDHCP(us)--> TFTP ipxe.efi | undionly.kpxe
//             --> iPXE --DHCP(store)+proxyDHCP(us)--> http://<laptop>/boot.ipxe (edgeimg serve)
//
// dnsmasq options used (dnsmasq(8), 2.90 as in Debian 12):
//   port=0                  "Setting this to zero completely disables DNS function, leaving only
//                           DHCP and/or TFTP."
//   interface= + bind-interfaces
//                           answer on the store LAN interface only; bind-interfaces also lets a
//                           second dnsmasq (libvirt, the distribution's) run on the same host.
//   dhcp-range=<net>,proxy  "For IPv4, the <mode> may be proxy in which case dnsmasq will provide
//                           proxy-DHCP on the specified subnet. (See --pxe-prompt and
//                           --pxe-service for details.)" No addresses are ever handed out.
//   leasefile-ro            proxy mode makes no leases; do not touch (or share) a lease file.
//   enable-tftp, tftp-root  dnsmasq's read-only TFTP server for the iPXE binaries.
//   dhcp-userclass=set:ipxe,iPXE and dhcp-match=set:ipxe,175
//                           iPXE sends user class "iPXE" (option 77) and its encapsulated
//                           option 175: either marks the second DHCP round (iPXE running).
//   pxe-service=tag:!ipxe,<CSA>,<menu text>,<basename>
//                           "dnsmasq acts as a boot server and directs the PXE client to download
//                           the file by TFTP"; the CSA is matched against the client's
//                           architecture (option 93): x86PC = 0 (BIOS), x86-64_EFI = 7,
//                           BC_EFI = 9 (names as swapped in dnsmasq 2.76). Exactly ONE service per
//                           CSA: then dnsmasq (>= 2.76) boots UEFI clients straight from the port
//                           4011 reply instead of sending a one-item menu some firmware trips on.
//                           A basename with a suffix gets no ".0" layer suffix.
//                           Without any pxe-service (or pxe-prompt) dnsmasq does no PXE processing
//                           at all, so in proxy mode it then answers nobody.
//   dhcp-boot=tag:ipxe,<http url>,,<server address>
//                           in proxy mode, dhcp-boot is the boot file sent when no pxe-service
//                           applies ("Provide the bootfile here, for iPXE", rfc2131.c).
//   log-dhcp, log-facility  every proxy reply with its tags and boot file, for the technician.
//
// Verified in test/netns/store-scenario.test.ts (store dnsmasq in one network namespace, this
// config in another, QEMU guests on the bridge) — what broke without each of these lines:
//   * pxe-service without tag:!ipxe: iPXE itself (second round) gets the PXE boot-server reply
//     again and TFTP-loads ipxe.efi forever (the classic iPXE chainload loop); dhcp-boot is never
//     sent to it.
//   * dhcp-boot without the ",,<server address>" part: siaddr stays 0 in the proxy reply and BIOS
//     iPXE ignores the reply ("Nothing to boot").
//   * dhcp-boot alone, no pxe-service: dnsmasq sends no proxy reply at all.
//
// Known UEFI breakage with proxyDHCP (firmware/bootloader side, not fixable here):
//   * edk2 #6944 (https://github.com/tianocore/edk2/issues/6944, Bugzilla 469): UefiPxeBcDxe did
//     not cache proxyDHCP packets, so UEFI PXE with a proxyDHCP server failed (reported in 2017,
//     with a patch, against UDK2014-based Dell firmware). Debian 12's OVMF (edk2 2022.11) boots
//     through this config (test above); older vendor firmware may not. Workaround: USB sticks, or
//     the store DHCP hands out the boot file.
//   * shim #165 (https://github.com/rhboot/shim/issues/165): shim fetches its second stage from
//     the DHCP server's address, not the proxyDHCP next-server. This chain does not use shim, but
//     it means Secure Boot netboot via shim + proxyDHCP is broken; Debian's ipxe.efi is not signed
//     anyway, so Secure Boot must be off for the PXE path.

import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { EnvironmentError, UsageError } from '../util/diagnostics.js';

export interface DnsmasqProxyOptions {
  /** Store LAN interface of the laptop, e.g. `eth0`, `enp0s31f6`. */
  interface: string;
  /** The laptop's IPv4 address on that LAN: TFTP server and next-server in proxy replies. */
  serverAddress: string;
  /**
   * Where `edgeimg serve` listens, e.g. `http://10.77.0.2:8080/`: iPXE is given
   * `<httpUrl>/boot.ipxe`. A URL whose path already ends in `.ipxe` is used as it is.
   * Plain http only: the Debian iPXE build has no HTTPS.
   */
  httpUrl: string;
  /** Directory holding `ipxe.efi` and `undionly.kpxe` (Debian's /usr/lib/ipxe works as it is). */
  tftpRoot: string;
  /** Network address of the store LAN, e.g. `10.77.0.0`; defaults to serverAddress (dnsmasq takes the mask from the interface). */
  subnet?: string;
  /** dnsmasq log file (`log-facility=`); unset, dnsmasq logs to syslog (and to stderr with --no-daemon). */
  logFile?: string;
}

/** File names the proxy hands to non-iPXE PXE clients, looked up in the TFTP root. */
export const IPXE_EFI = 'ipxe.efi';
export const IPXE_BIOS = 'undionly.kpxe';

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
// Linux interface names: at most 15 bytes, no '/', ':' or whitespace.
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function bad(what: string, value: string, why: string): never {
  throw new UsageError(`dnsmasq proxy config: ${what} ${JSON.stringify(value)} ${why}`);
}

/** A value that goes into one config line: no line breaks, no NUL, nothing dnsmasq would split on. */
function plainPath(what: string, p: string): string {
  if (!isAbsolute(p)) bad(what, p, 'must be an absolute path');
  if (/[\0\r\n,"#]/.test(p)) bad(what, p, 'must not contain line breaks, commas, quotes or #');
  return p;
}

/** The boot.ipxe URL iPXE is sent to. */
export function bootScriptUrl(httpUrl: string): string {
  let u: URL;
  try {
    u = new URL(httpUrl);
  } catch {
    bad('httpUrl', httpUrl, 'is not a URL');
  }
  if (u.protocol !== 'http:') bad('httpUrl', httpUrl, 'must be http:// (the Debian iPXE build has no HTTPS)');
  if (u.username || u.password || u.search || u.hash) bad('httpUrl', httpUrl, 'must not carry credentials, a query or a fragment');
  if (!u.pathname.endsWith('.ipxe')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/boot.ipxe`;
  const s = u.toString();
  // dnsmasq splits dhcp-boot on commas; the BOOTP file field holds 127 bytes plus NUL.
  if (/[,\s"#]/.test(s)) bad('httpUrl', httpUrl, 'must not contain commas, whitespace, quotes or #');
  if (Buffer.byteLength(s) > 127) bad('httpUrl', httpUrl, 'is longer than the 127 bytes of the DHCP boot file field');
  return s;
}

/**
 * dnsmasq configuration for proxyDHCP + TFTP next to an existing store DHCP server: PXE firmware
 * gets ipxe.efi (UEFI x86-64, option 93 = 7 or 9) or undionly.kpxe (BIOS, option 93 = 0) by TFTP;
 * iPXE (user class "iPXE" / option 175) gets the HTTP URL of boot.ipxe. Run it with
 * `dnsmasq --conf-file=FILE --no-daemon` as root. Throws UsageError for unusable values.
 */
export function dnsmasqProxyConfig(o: DnsmasqProxyOptions): string {
  if (!IFNAME.test(o.interface)) bad('interface', o.interface, 'is not a network interface name');
  if (!IPV4.test(o.serverAddress)) bad('serverAddress', o.serverAddress, 'is not an IPv4 address');
  const subnet = o.subnet ?? o.serverAddress;
  if (!IPV4.test(subnet)) bad('subnet', subnet, 'is not an IPv4 network address');
  const tftpRoot = plainPath('tftpRoot', o.tftpRoot);
  const logFile = o.logFile === undefined ? undefined : plainPath('logFile', o.logFile);
  const url = bootScriptUrl(o.httpUrl);

  const lines = [
    '# Generated by edgeimg (src/serve/dnsmasq.ts): proxyDHCP + TFTP for PXE next to the store DHCP server.',
    '# Hands out NO addresses. Run as root:  dnsmasq --conf-file=THIS_FILE --no-daemon',
    '# See docs/pxe.md.',
    'port=0',
    `interface=${o.interface}`,
    'bind-interfaces',
    `dhcp-range=${subnet},proxy`,
    'leasefile-ro',
    'pid-file=',
    '',
    '# TFTP: firmware PXE downloads iPXE from here (files must be world-readable: dnsmasq drops root).',
    'enable-tftp',
    `tftp-root=${tftpRoot}`,
    '',
    '# Second round: iPXE itself is running (user class "iPXE", option 175).',
    'dhcp-userclass=set:ipxe,iPXE',
    'dhcp-match=set:ipxe,175',
    '',
    '# First round: the firmware\'s PXE client, by architecture (option 93). One service per CSA.',
    `pxe-service=tag:!ipxe,x86PC,"edgeimg iPXE BIOS",${IPXE_BIOS}`,
    `pxe-service=tag:!ipxe,x86-64_EFI,"edgeimg iPXE UEFI",${IPXE_EFI}`,
    `pxe-service=tag:!ipxe,BC_EFI,"edgeimg iPXE UEFI",${IPXE_EFI}`,
    '',
    '# iPXE gets the boot script by HTTP; the server address (siaddr) must be set or BIOS iPXE ignores the reply.',
    `dhcp-boot=tag:ipxe,${url},,${o.serverAddress}`,
    '',
    'log-dhcp',
  ];
  if (logFile !== undefined) lines.push(`log-facility=${logFile}`);
  return `${lines.join('\n')}\n`;
}

/** Where the Debian/Ubuntu `ipxe` package puts the binaries. */
export const DEBIAN_IPXE_DIR = '/usr/lib/ipxe';

/**
 * The iPXE binaries proxyDHCP clients are sent to, from the Debian/Ubuntu `ipxe` package
 * (`/usr/lib/ipxe/ipxe.efi`, `/usr/lib/ipxe/undionly.kpxe`; that directory can serve as the TFTP
 * root as it is). Throws EnvironmentError (exit 3) naming the package when neither is there, or
 * when either is missing and `requireBoth` is set; otherwise returns what it found.
 */
export function locateIpxeBinaries(opts: { dir?: string; requireBoth?: boolean } = {}): { efi?: string; bios?: string } {
  const dir = opts.dir ?? DEBIAN_IPXE_DIR;
  const out: { efi?: string; bios?: string } = {};
  const efi = join(dir, IPXE_EFI);
  const bios = join(dir, IPXE_BIOS);
  if (existsSync(efi)) out.efi = efi;
  if (existsSync(bios)) out.bios = bios;
  const missing = [out.efi ? undefined : efi, out.bios ? undefined : bios].filter((p): p is string => p !== undefined);
  if (missing.length === 2 || (opts.requireBoth && missing.length > 0)) {
    throw new EnvironmentError(
      `iPXE binaries for PXE clients not found: ${missing.join(' and ')}. ` +
        'Install them with `sudo apt-get install ipxe` (Debian/Ubuntu). proxyDHCP/TFTP needs Linux: see docs/pxe.md',
    );
  }
  return out;
}
