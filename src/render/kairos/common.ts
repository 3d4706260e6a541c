// The parts of a Kairos cloud-config that do not depend on the Kubernetes provider: the
// unattended install, the admin user, hostname and static network, trust for the registry
// mirror CA, and the assembly of the whole document around the provider's parts.
//
// Where things run. yip (v1.16.5 pkg/schema/loader_cloudinit.go, cloudInit.Load) turns the
// top-level cloud-init keys into stages: `users` (and ssh keys, write_files, runcmd) into
// `boot`, `hostname` into `initramfs`. immucore runs `stages.initramfs` chrooted into the new
// root after the persistent bind mounts and before switch-root (immucore v0.11.2
// pkg/dag/dag_normal_boot.go RegisterNormalBoot), so files written there exist before any
// service of the real system starts. `stages.boot` runs from cos-setup-boot.service, which has
// no ordering against k3s or k0s: on every boot after the first, those start on their own and
// would race it. So everything k3s, k0s, containerd or the trust store reads is written in
// `initramfs`. Kairos discards /etc on every reboot except bind-mounted paths, so every step
// converges when it runs again each boot. See test/conformance/kairos-stages.test.ts.

import type { HardwarePlan, NodePlan, SitePlan } from '../../catalogue/plan.js';
import type { KairosSecrets } from '../../secrets/types.js';
import { CatalogueError, excerpt } from '../../util/diagnostics.js';
import type { FlavorTraits } from './flavor.js';
import { networkFiles, timesyncdSettings } from './network.js';
import { rootFile, type KairosInstall, type KairosUser, type ProviderParts, type YipStep } from './types.js';

/** Everything a provider renderer reads. */
export interface RenderContext {
  site: SitePlan;
  node: NodePlan;
  secrets: KairosSecrets;
  traits: FlavorTraits;
  /** The registry mirror CA on the node (installed by the boot stage), if the site has one. */
  mirrorCa: string | undefined;
}

export const ADMIN_USER = 'kairos';
export const MIRROR_CA_NAME = 'edgeimg-mirror.crt';

/** `install.device` takes `auto`, a `/dev/...` path or `script://` (Kairos InstallSchema). */
export function installBlock(hw: HardwarePlan): KairosInstall {
  const path = hw.disk.path;
  if (path !== undefined && !path.startsWith('/dev/')) {
    throw new CatalogueError([{ ...hw.source, message: `hardware class ${hw.name}: Kairos needs the install disk as a /dev/... path, got ${excerpt(path)}` }]);
  }
  // A selector cannot be expressed to the Kairos installer; `auto` picks the first suitable disk.
  return { auto: true, device: path ?? 'auto', reboot: true };
}

/** The fleet admin: SSH keys only, password locked; Kairos images grant sudo to `admin`. */
export function adminUser(site: SitePlan): KairosUser {
  const user: KairosUser = { name: ADMIN_USER, groups: ['admin'], lock_passwd: true };
  if (site.sshKeys.length > 0) user.ssh_authorized_keys = [...site.sshKeys];
  return user;
}

export function mirrorCaPath(site: SitePlan, traits: FlavorTraits): string | undefined {
  return site.registries.caBundle.trim() === '' ? undefined : `${traits.trustDir}/${MIRROR_CA_NAME}`;
}

/** Writes the mirror CA into the trust store's source directory and regenerates the bundle. */
function trustStep(site: SitePlan, traits: FlavorTraits): YipStep | undefined {
  const path = mirrorCaPath(site, traits);
  if (path === undefined) return undefined;
  const pem = site.registries.caBundle.endsWith('\n') ? site.registries.caBundle : `${site.registries.caBundle}\n`;
  return { name: 'edgeimg: trust the registry mirror CA', files: [rootFile(path, pem)], commands: [traits.trustCommand] };
}

export function controlPlanes(site: SitePlan): NodePlan[] {
  return site.nodes.filter((n) => n.role === 'controlplane');
}

/** Site labels overridden by node labels, as sorted `key=value` strings. */
export function nodeLabels(site: SitePlan, node: NodePlan): string[] {
  const merged = { ...site.labels, ...node.labels };
  return Object.keys(merged)
    .sort()
    .map((k) => `${k}=${merged[k]}`);
}

export function unsupported(site: SitePlan, message: string): CatalogueError {
  return new CatalogueError([{ ...site.source, message: `site ${site.id}: ${message}` }]);
}

export function assembleCloudConfig(ctx: RenderContext, traits: FlavorTraits, provider: ProviderParts, providerLabel: string): Record<string, unknown> {
  const { site, node } = ctx;
  const initramfs: YipStep[] = [
    { name: 'edgeimg: hostname', hostname: node.hostname },
    { name: 'edgeimg: static network', files: networkFiles(site, node, traits) },
  ];
  const ntp = timesyncdSettings(site, traits);
  if (ntp !== undefined) initramfs.push({ name: 'edgeimg: time servers', timesyncd: ntp });
  const trust = trustStep(site, traits);
  if (trust !== undefined) initramfs.push(trust);
  if (provider.files.length > 0) initramfs.push({ name: `edgeimg: ${providerLabel} configuration`, files: provider.files });

  const stages: Record<string, YipStep[]> = { initramfs };
  return {
    install: installBlock(node.hardware),
    hostname: node.hostname,
    users: [adminUser(site)],
    stages,
    ...provider.blocks,
  };
}
