// Real-image boots: when a hardware class's real boot image is cached, the seed is booted with
// it (Talos Image Factory nocloud ISO, or a Kairos ISO) instead of the probe image, and the
// verdict comes from the OS's own console (see src/verify/profiles/ and docs/real-images.md).
//
// Cache layout (under images/cache/ of the repository, or $EDGEIMG_REAL_IMAGE_DIR):
//
//   talos/<talos version>/<schematic id>/nocloud-<arch>.iso
//       e.g. talos/v1.13.9/fb79be88...306d/nocloud-amd64.iso, the file Image Factory serves at
//       https://factory.talos.dev/image/<schematic id>/<talos version>/nocloud-<arch>.iso
//       The schematic ID is not in the manifest: it is read from the installer image in the
//       node's user-data (factory.talos.dev/<platform>-installer/<id>:<version>), i.e.
//       machine.install.image (Talos 1.13) or UnattendedInstallConfig installer.image (1.14).
//
//   kairos/<kairos version>/<provider>-<provider version>/<flavor>-<arch>.iso
//       e.g. kairos/v3.5.1/k3s-v1.33.4+k3s1/ubuntu-24.04-amd64.iso. The manifest does not carry
//       the flavor, so the rule is: <flavor>-<arch>.iso when a flavor is given, else
//       any-<arch>.iso, else the only *-<arch>.iso in the directory; with several candidates
//       and no flavor the alphabetically first one is used (and named in the log).

import { copyFileSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { artifactPathProblem } from './artifact-read.js';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { Manifest, ManifestNode } from '../manifest/manifest.js';
import type { CheckResult } from './static.js';
import type { Accel, MediaKind, QemuFirmware, QemuUserNetwork } from './qemu.js';
import { defaultProbeRoot } from './probe-image.js';
import { bootTalos, type ProfileResult } from './profiles/talos.js';
import { bootKairos } from './profiles/kairos.js';

export type RealImageProfile = 'talos' | 'kairos';

export interface RealImage {
  profile: RealImageProfile;
  path: string;
  /** Talos: the schematic ID the ISO was looked up by. */
  schematic?: string;
  /** Set when the choice was not unambiguous (several Kairos ISOs for the arch). */
  note?: string;
}

// ------------------------------------------------------------------------------------------
// Cache lookup
// ------------------------------------------------------------------------------------------

/**
 * The directory holding talos/ and kairos/. `root` may be the repository root, its images/
 * directory or the cache directory itself; $EDGEIMG_REAL_IMAGE_DIR overrides. null: no cache.
 */
export function realImageCacheDir(root?: string): string | null {
  const env = process.env.EDGEIMG_REAL_IMAGE_DIR;
  if (env) return existsSync(env) ? resolve(env) : null;
  const base = resolve(root ?? defaultProbeRoot());
  for (const cand of [join(base, 'images', 'cache'), join(base, 'cache'), base]) {
    if (existsSync(join(cand, 'talos')) || existsSync(join(cand, 'kairos'))) return cand;
  }
  return null;
}

const INSTALLER_RE = /^[^/\s]+\/(?:[\w.-]+\/)*[\w.-]*installer[\w.-]*\/([0-9a-f]{64}):([^\s@]+)$/;

/** The Image Factory schematic ID and version of a Talos installer image reference, or null. */
export function parseInstallerImage(image: string): { schematic: string; version: string } | null {
  const m = INSTALLER_RE.exec(image.trim());
  return m ? { schematic: m[1]!, version: m[2]! } : null;
}

type Doc = Record<string, unknown>;

const isObj = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

function talosDocs(userData: string): Doc[] {
  try {
    return parseAllDocuments(userData)
      .map((d) => d.toJS() as unknown)
      .filter(isObj);
  } catch {
    return [];
  }
}

/** The installer image of a Talos user-data: machine.install.image (1.13) or UnattendedInstallConfig installer.image (1.14). */
export function talosInstallerImage(userData: string): string | null {
  for (const d of talosDocs(userData)) {
    if (d.kind === 'UnattendedInstallConfig' && isObj(d.installer) && typeof d.installer.image === 'string') return d.installer.image;
    if (isObj(d.machine) && isObj(d.machine.install) && typeof d.machine.install.image === 'string') return d.machine.install.image;
  }
  return null;
}

function kairosDir(osVersion: string): { version: string; providerDir: string } | null {
  const parts = osVersion.trim().split(/\s+/);
  if (parts.length === 1 && parts[0]) return { version: parts[0], providerDir: 'core' };
  if (parts.length === 3) return { version: parts[0]!, providerDir: `${parts[1]}-${parts[2]}` };
  return null;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * The cached real boot image for `node`, or null. `userData` is the node's user-data (Talos:
 * the schematic ID comes from its installer image). `kairosFlavor` narrows the Kairos choice.
 */
export function locateRealImage(imagesDir: string | undefined, manifest: Manifest, node: ManifestNode, userData: string | Buffer, kairosFlavor?: string): RealImage | null {
  const cache = realImageCacheDir(imagesDir);
  if (!cache) return null;
  const text = typeof userData === 'string' ? userData : userData.toString('utf8');
  if (manifest.os === 'talos') {
    const image = talosInstallerImage(text);
    const parsed = image ? parseInstallerImage(image) : null;
    if (!parsed) return null;
    const path = join(cache, 'talos', manifest.osVersion, parsed.schematic, `nocloud-${node.arch}.iso`);
    return isFile(path) ? { profile: 'talos', path, schematic: parsed.schematic } : null;
  }
  const kd = kairosDir(manifest.osVersion);
  if (!kd) return null;
  const dir = join(cache, 'kairos', kd.version, kd.providerDir);
  const wanted = [...(kairosFlavor ? [`${kairosFlavor}-${node.arch}.iso`] : []), `any-${node.arch}.iso`];
  for (const name of wanted) {
    if (isFile(join(dir, name))) return { profile: 'kairos', path: join(dir, name) };
  }
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(`-${node.arch}.iso`) && isFile(join(dir, n))).sort();
  } catch {
    return null;
  }
  if (names.length === 0) return null;
  const note = names.length > 1 ? `several Kairos ISOs for ${node.arch} in ${dir} (${names.join(', ')}); using ${names[0]}` : undefined;
  return { profile: 'kairos', path: join(dir, names[0]!), ...(note ? { note } : {}) };
}

// ------------------------------------------------------------------------------------------
// Guest set-up from the seed
// ------------------------------------------------------------------------------------------

function ipToInt(ip: string): number | null {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) return null;
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * Slirp settings that let a guest keep its static address: the slirp network is the node's
 * subnet, the slirp gateway ("host") is the seed's gateway when it is inside that subnet, DNS
 * another free address, and the first DHCP lease is the node's own address (so a guest that
 * falls back to DHCP still ends up where the port forward points).
 */
export function slirpPlan(addressCidr: string, gateway?: string): Pick<QemuUserNetwork, 'subnet' | 'hostAddress' | 'dnsAddress' | 'guestAddress'> | null {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(addressCidr.trim());
  if (!m) return null;
  const ip = ipToInt(m[1]!);
  const prefix = Number(m[2]);
  if (ip === null || prefix < 8 || prefix > 29) return null;
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const net = (ip & mask) >>> 0;
  const bcast = (net | (~mask >>> 0)) >>> 0;
  if (ip === net || ip === bcast) return null;
  const usable = (n: number): boolean => n > net && n < bcast;
  const gw = gateway !== undefined ? ipToInt(gateway) : null;
  const taken = new Set<number>([ip]);
  let host: number | undefined = gw !== null && usable(gw) && gw !== ip && (gw & mask) >>> 0 === net ? gw : undefined;
  for (let n = net + 1; host === undefined && n < bcast; n++) if (!taken.has(n)) host = n;
  if (host === undefined) return null;
  taken.add(host);
  let dns: number | undefined;
  for (const n of [net + 3, net + 2, ...Array.from({ length: 16 }, (_, i) => net + 4 + i)]) {
    if (usable(n) && !taken.has(n)) {
      dns = n;
      break;
    }
  }
  if (dns === undefined) return null;
  return { subnet: `${intToIp(net)}/${prefix}`, hostAddress: intToIp(host), dnsAddress: intToIp(dns), guestAddress: intToIp(ip) };
}

/** The guest NIC for a node, from its network-config (netplan v2 or v1) and manifest address. */
export function guestNetwork(networkConfig: string | undefined, nodeAddress: string): QemuUserNetwork {
  let doc: unknown;
  try {
    doc = networkConfig ? parseYaml(networkConfig) : undefined;
  } catch {
    doc = undefined;
  }
  const addr = nodeAddress.replace(/\/.*$/, '');
  let cidr: string | undefined;
  let gateway: string | undefined;
  let mac: string | undefined;
  const ifaces: Doc[] = [];
  if (isObj(doc) && isObj(doc.ethernets)) ifaces.push(...Object.values(doc.ethernets).filter(isObj));
  for (const e of ifaces) {
    const addrs = Array.isArray(e.addresses) ? e.addresses.filter((a): a is string => typeof a === 'string') : [];
    const own = addrs.find((a) => a.replace(/\/.*$/, '') === addr) ?? (ifaces.length === 1 ? addrs[0] : undefined);
    if (!own && ifaces.length > 1) continue;
    if (own && own.includes('/')) cidr = own;
    if (typeof e.gateway4 === 'string') gateway = e.gateway4;
    if (Array.isArray(e.routes)) {
      for (const r of e.routes.filter(isObj)) {
        if ((r.to === '0.0.0.0/0' || r.to === 'default') && typeof r.via === 'string') gateway = r.via;
      }
    }
    if (isObj(e.match) && typeof e.match.macaddress === 'string') mac = e.match.macaddress;
    if (typeof e.macaddress === 'string') mac = e.macaddress;
    break;
  }
  if (isObj(doc) && Array.isArray(doc.config)) {
    for (const c of doc.config.filter(isObj)) {
      if (c.type !== 'physical') continue;
      if (typeof c.mac_address === 'string') mac = c.mac_address;
      for (const s of Array.isArray(c.subnets) ? c.subnets.filter(isObj) : []) {
        if (typeof s.address === 'string' && s.address.replace(/\/.*$/, '') === addr) {
          cidr = s.address.includes('/') ? s.address : cidr;
          if (typeof s.gateway === 'string') gateway = s.gateway;
        }
      }
    }
  }
  const plan = cidr ? slirpPlan(cidr, gateway) : null;
  const net: QemuUserNetwork = { ...(plan ?? {}) };
  if (mac && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) net.macAddress = mac.toLowerCase();
  return net;
}

/** The scratch disk type that gives the install target the name the seed's config uses. */
export function scratchKindFor(installTarget: string | undefined): MediaKind {
  const t = installTarget ?? '';
  if (/\/dev\/nvme\d/.test(t) || /transport\s*==\s*"nvme"/.test(t)) return 'nvme';
  if (/\/dev\/vd[a-z]/.test(t)) return 'virtio-disk';
  if (/\/dev\/(sd|hd)[a-z]/.test(t) || /rotational/.test(t) || t === 'auto' || t === '') return 'sata-disk';
  return 'virtio-disk';
}

/** The install target the seed names: Talos machine.install.disk / diskSelector / the 1.14 CEL match; Kairos install.device. */
export function installTarget(os: Manifest['os'], userData: string): string | undefined {
  if (os === 'talos') {
    for (const d of talosDocs(userData)) {
      if (d.kind === 'UnattendedInstallConfig' && isObj(d.provisioning) && isObj(d.provisioning.diskSelector)) {
        const match = d.provisioning.diskSelector.match;
        if (typeof match === 'string') return match;
      }
      if (isObj(d.machine) && isObj(d.machine.install)) {
        const inst = d.machine.install;
        if (typeof inst.disk === 'string') return inst.disk;
        if (isObj(inst.diskSelector) && inst.diskSelector.type === 'nvme') return 'disk.transport == "nvme"';
        if (isObj(inst.diskSelector)) return 'disk.rotational';
      }
    }
    return undefined;
  }
  try {
    const d = parseYaml(userData) as unknown;
    if (isObj(d) && isObj(d.install) && typeof d.install.device === 'string') return d.install.device;
  } catch {
    // not YAML: no target known
  }
  return undefined;
}

/** The site OS CA (PEM) from OUT/<site>/talosconfig, or null. */
export function readSiteOsCaPem(siteDir: string): string | null {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(join(siteDir, 'talosconfig'), 'utf8'));
  } catch {
    return null;
  }
  if (!isObj(doc) || !isObj(doc.contexts)) return null;
  const name = typeof doc.context === 'string' ? doc.context : Object.keys(doc.contexts)[0];
  const ctx = name !== undefined ? doc.contexts[name] : undefined;
  if (!isObj(ctx) || typeof ctx.ca !== 'string') return null;
  const pem = Buffer.from(ctx.ca, 'base64').toString('utf8');
  return pem.includes('-----BEGIN CERTIFICATE-----') ? pem : null;
}

const OVMF_BIOS = ['/usr/share/ovmf/OVMF.fd', '/usr/share/qemu/OVMF.fd', '/usr/share/OVMF/OVMF.fd', '/usr/share/edk2-ovmf/x64/OVMF.fd'];
const OVMF_PFLASH: Array<[string, string]> = [
  ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
  ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
  ['/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd'],
  ['/usr/share/edk2/x64/OVMF_CODE.fd', '/usr/share/edk2/x64/OVMF_VARS.fd'],
];
const AAVMF_BIOS = ['/usr/share/qemu-efi-aarch64/QEMU_EFI.fd', '/usr/share/AAVMF/AAVMF_CODE.fd', '/usr/share/edk2/aarch64/QEMU_EFI.fd', '/usr/share/qemu/edk2-aarch64-code.fd'];

/**
 * Guest firmware for a node: UEFI (OVMF / AAVMF) when the class boots UEFI and the firmware is
 * installed; SeaBIOS (QEMU's default) otherwise on amd64. `EDGEIMG_UEFI_FIRMWARE` names a
 * combined image for `-bios`. `varsDir` receives a writable copy of an OVMF variable store.
 * Returns `{ error }` when arm64 has no UEFI firmware (it cannot boot an ISO without it).
 */
export function guestFirmware(arch: ManifestNode['arch'], firmware: ManifestNode['firmware'], varsDir: string): { firmware?: QemuFirmware; note?: string; error?: string } {
  const env = process.env.EDGEIMG_UEFI_FIRMWARE;
  if (arch === 'arm64') {
    const f = env && existsSync(env) ? env : AAVMF_BIOS.find((p) => existsSync(p));
    return f ? { firmware: { kind: 'bios', path: f } } : { error: 'no arm64 UEFI firmware found (install qemu-efi-aarch64, or set EDGEIMG_UEFI_FIRMWARE)' };
  }
  if (firmware !== 'uefi') return {};
  if (env && existsSync(env)) return { firmware: { kind: 'bios', path: env } };
  const bios = OVMF_BIOS.find((p) => existsSync(p));
  if (bios) return { firmware: { kind: 'bios', path: bios } };
  const pair = OVMF_PFLASH.find(([c, v]) => existsSync(c) && existsSync(v));
  if (pair) {
    const vars = join(varsDir, 'OVMF_VARS.fd');
    copyFileSync(pair[1], vars);
    return { firmware: { kind: 'pflash', code: pair[0], vars } };
  }
  return { note: 'no OVMF found (install ovmf); booting the UEFI class with SeaBIOS instead' };
}

/**
 * Default hard limit of a real-image boot. ESTIMATES, not measurements (no real image was booted
 * while this was written): Talos ~30-60 s to config load under KVM plus the install (image pull)
 * and reboot for apid; under TCG several times that. Kairos installs several GB to disk.
 */
export function realImageTimeoutMs(profile: RealImageProfile, accel: Accel): number {
  const min = 60_000;
  if (profile === 'talos') return (accel === 'kvm' ? 10 : 40) * min;
  return (accel === 'kvm' ? 20 : 90) * min;
}

// ------------------------------------------------------------------------------------------
// Integration hook
// ------------------------------------------------------------------------------------------

export interface RealImageBootOptions {
  siteDir: string;
  manifest: Manifest;
  node: ManifestNode;
  seedPath: string;
  medium: 'cdrom' | 'usb';
  imagesDir?: string;
  /** Hard limit for the guest; raised to realImageTimeoutMs() unless `exactTimeout`. */
  timeoutMs: number;
  accel: Accel;
  signal?: AbortSignal;
  log: (line: string) => void;
  exactTimeout?: boolean;
  /** Default OUT/<site>/verify/<node>-<seed kind>-real.log. */
  serialLog?: string;
  kairosFlavor?: string;
  /** Tests: a fake qemu-system-* binary. */
  qemuBinary?: string;
  killGraceMs?: number;
  /** Skip the apid certificate check on Talos control planes. */
  skipApid?: boolean;
  apidRetryDelayMs?: number;
  /** Size of the sparse scratch install disk; default 16 GiB (Talos) / 40 GiB (Kairos). */
  scratchBytes?: number;
}

const GiB = 1024 ** 3;

/**
 * Boots the node's seed with its cached real image and judges the OS's console. null when no
 * real image is cached for the node (the caller then uses the probe image).
 */
export async function realImageBoot(o: RealImageBootOptions): Promise<CheckResult | null> {
  const { manifest, node } = o;
  if (!realImageCacheDir(o.imagesDir)) return null; // the common case: nothing cached, no work
  const artifact = (kind: 'user-data' | 'network-config'): string | undefined => {
    const a = manifest.artifacts.find((x) => x.node === node.name && x.kind === kind);
    if (!a || artifactPathProblem(a.path)) return undefined;
    try {
      // confined like every manifest read: no symlink, a regular file of bounded size
      const abs = join(o.siteDir, a.path);
      if (realpathSync(abs) !== join(realpathSync(o.siteDir), a.path)) return undefined;
      const st = lstatSync(abs);
      if (!st.isFile() || st.size > 16 * 1024 * 1024) return undefined;
      return readFileSync(abs, 'utf8');
    } catch {
      return undefined;
    }
  };
  const userData = artifact('user-data');
  if (userData === undefined) return null;
  const image = locateRealImage(o.imagesDir, manifest, node, userData, o.kairosFlavor);
  if (!image) return null;

  const check = `boot-${o.medium}`;
  const seedKind = o.medium === 'cdrom' ? 'seed-iso' : 'seed-img';
  const serialLog = o.serialLog ?? join(o.siteDir, 'verify', `${node.name}-${seedKind}-real.log`);
  const base = { check, node: node.name, log: serialLog };
  const seedRel = o.seedPath.startsWith(o.siteDir) ? o.seedPath.slice(o.siteDir.length).replace(/^\/+/, '') : o.seedPath;
  if (image.note) o.log(`${node.name}: ${image.note}`);
  o.log(`${node.name}: booting ${seedRel} with the real ${image.profile} image ${image.path}`);

  const workDir = mkdtempSync(join(tmpdir(), 'edgeimg-real-'));
  try {
    const fw = guestFirmware(node.arch, node.firmware, workDir);
    if (fw.error) return { ...base, ok: false, message: `${seedRel}: cannot boot the real ${image.profile} image: ${fw.error}` };
    if (fw.note) o.log(`${node.name}: ${fw.note}`);
    const timeoutMs = o.exactTimeout ? o.timeoutMs : Math.max(o.timeoutMs, realImageTimeoutMs(image.profile, o.accel));
    const target = installTarget(manifest.os, userData);
    const common = {
      arch: node.arch,
      accel: o.accel,
      isoPath: image.path,
      seedPath: o.seedPath,
      seedMedium: o.medium,
      scratch: { kind: scratchKindFor(target), bytes: o.scratchBytes ?? (image.profile === 'talos' ? 16 : 40) * GiB },
      network: guestNetwork(artifact('network-config'), node.address),
      firmware: fw.firmware,
      role: node.role,
      timeoutMs,
      serialLog,
      signal: o.signal,
      log: (l: string) => o.log(`${node.name}: ${l}`),
      qemuBinary: o.qemuBinary,
      killGraceMs: o.killGraceMs,
    };
    let r: ProfileResult;
    try {
      if (image.profile === 'talos') {
        r = await bootTalos({ ...common, osCaPem: readSiteOsCaPem(o.siteDir) ?? undefined, skipApid: o.skipApid, apidRetryDelayMs: o.apidRetryDelayMs });
      } else {
        r = await bootKairos(common);
      }
    } catch (err) {
      // invalid QEMU options derived from the seed, a missing medium, ...: a failed check, not a crash
      return { ...base, ok: false, message: `${seedRel}: cannot boot the real ${image.profile} image ${basename(image.path)}: ${(err as Error).message}` };
    }
    const secs = (r.durationMs / 1000).toFixed(1);
    const accel = r.qemu?.accel ?? o.accel;
    return { ...base, ok: r.ok, message: `${seedRel} (${node.arch}, ${accel}, ${secs} s, real ${image.profile} image ${basename(image.path)}): ${r.message}` };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
