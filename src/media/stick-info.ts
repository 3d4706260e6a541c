// The small text file on every seed stick (EDGEIMG.TXT) that tells a person who opens the stick
// on a laptop what it is: which site and node, the node's MAC and hostname, which boot stick it
// goes with, and the build it came from. Windows line endings, so Notepad shows it as written.
// A pure function of manifest data, so `verify` and `inspect` can recompute it byte for byte.

export const STICK_INFO_NAME = 'EDGEIMG.TXT';

export interface StickInfo {
  site: string;
  node: string;
  role: 'controlplane' | 'worker';
  hostname: string;
  mac?: string;
  hardwareClass: string;
  arch: string;
  firmware: string;
  /** e.g. "talos v1.13.9" or "kairos v3.5.1 k3s v1.33.4+k3s1". */
  os: string;
  inputDigest: string;
  instanceId: string;
}

/**
 * `medium`: a seed stick (goes with the class boot stick), or a Kairos one-stick ISO (the class
 * live ISO with this node's config.yaml: the only stick the node needs).
 */
export function stickInfoText(i: StickInfo, medium: 'seed' | 'kairos-stick' = 'seed'): string {
  const one = medium === 'kairos-stick';
  const lines = [
    one ? 'edgeimg Kairos stick: boots the installer with the first-boot configuration of ONE node.' : 'edgeimg seed stick: the first-boot configuration of ONE node.',
    '',
    `Site:         ${i.site}`,
    `Node:         ${i.node} (${i.role === 'controlplane' ? 'control plane' : 'worker'})`,
    `Hostname:     ${i.hostname}`,
    `MAC address:  ${i.mac ?? '(not given in the catalogue)'}`,
    `Hardware:     ${i.hardwareClass} (${i.arch}, ${i.firmware === 'uefi' ? 'UEFI' : 'BIOS'})`,
    `OS:           ${i.os}`,
    `Instance:     ${i.instanceId}`,
    `Build:        ${i.inputDigest}`,
    '',
    `Use it only on node ${i.node} of ${i.site} (the machine with MAC ${i.mac ?? 'listed on the field sheet'}):`,
    one ? 'plug in only this stick, boot the machine from it; it installs Kairos and reboots.' : `plug it in together with the ${i.hardwareClass} boot stick, then power the machine on.`,
    'Check a stick before use with: edgeimg inspect <stick>',
    'This stick holds cluster secrets: keep it safe and wipe it after the install.',
    '',
  ];
  return lines.join('\r\n');
}

/** The StickInfo of a manifest's node, given the instance-id its meta-data carries. */
export function stickInfoFromManifest(
  m: { site: string; os: string; osVersion: string; inputDigest: string },
  n: { name: string; role: 'controlplane' | 'worker'; hostname: string; mac?: string; hardwareClass: string; arch: string; firmware: string },
  instanceId: string,
): StickInfo {
  return {
    site: m.site,
    node: n.name,
    role: n.role,
    hostname: n.hostname,
    ...(n.mac ? { mac: n.mac } : {}),
    hardwareClass: n.hardwareClass,
    arch: n.arch,
    firmware: n.firmware,
    os: `${m.os} ${m.osVersion}`,
    inputDigest: m.inputDigest,
    instanceId,
  };
}

/** The site, node and instance-id an EDGEIMG.TXT names (for `inspect`), if it parses. */
export function parseStickInfo(text: string): { site?: string; node?: string; instanceId?: string; hostname?: string; mac?: string; os?: string; build?: string } {
  const field = (name: string): string | undefined => new RegExp(`^${name}:\\s+(.+?)\\s*$`, 'm').exec(text.replace(/\r/g, ''))?.[1];
  return {
    site: field('Site'),
    node: field('Node')?.split(' ')[0],
    hostname: field('Hostname'),
    mac: field('MAC address'),
    os: field('OS'),
    instanceId: field('Instance'),
    build: field('Build'),
  };
}
