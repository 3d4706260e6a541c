// The resolved, fully explicit model every later stage reads. Nothing downstream of
// `resolve` looks at catalogue files or applies defaults: if a value matters for the
// output, it is in these types.

import type { SourcePos } from '../util/diagnostics.js';

export type OsName = 'talos' | 'kairos';
export type Arch = 'amd64' | 'arm64';
export type Firmware = 'uefi' | 'bios';
export type NodeRole = 'controlplane' | 'worker';
export type KairosProvider = 'k3s' | 'k0s';

/** Install disk: an explicit device path, or a selector the OS resolves at install time. */
export interface DiskPlan {
  path?: string;
  selector?: {
    model?: string;
    size?: string; // e.g. ">= 100GB" (Talos disk selector syntax)
    type?: 'ssd' | 'hdd' | 'nvme' | 'sd';
    busPath?: string;
  };
}

/** Primary NIC: an explicit interface name, or a selector. */
export interface NicPlan {
  name?: string;
  selector?: {
    hardwareAddr?: string;
    driver?: string;
    busPath?: string;
  };
}

/** Talos Image Factory schematic inputs. */
export interface FactoryCustomization {
  extensions: string[]; // official extension names, e.g. siderolabs/intel-ucode
  extraKernelArgs: string[];
  overlay?: { image: string; name: string; options?: Record<string, unknown> };
}

export interface HardwarePlan {
  name: string;
  arch: Arch;
  firmware: Firmware;
  disk: DiskPlan;
  nic: NicPlan;
  factory: FactoryCustomization;
  kairosBaseImage?: string;
  source: SourcePos;
}

/** A patch file, in the order it applies: fleet, hardware class, site, node. */
export interface OverlayRef {
  level: 'fleet' | 'hardware' | 'site' | 'node';
  path: string; // absolute path of the overlay file
  display: string; // path as shown in diagnostics (relative to cwd)
}

export interface NodePlan {
  name: string;
  hostname: string;
  role: NodeRole;
  hardware: HardwarePlan;
  mac?: string; // lower-case, colon separated
  ip: string; // e.g. 10.4.12.11
  prefix: number; // site subnet prefix length
  labels: Record<string, string>;
  overlays: OverlayRef[];
  source: SourcePos;
}

export interface TalosTarget {
  version: string; // e.g. v1.13.4
  minor: '1.13' | '1.14';
  kubernetesVersion: string; // e.g. v1.34.1
}

export interface KairosTarget {
  version: string; // e.g. v3.5.1
  flavor: string; // e.g. ubuntu-24.04
  provider: KairosProvider;
  providerVersion: string; // e.g. v1.33.4+k3s1
}

export interface RegistryPlan {
  /**
   * Upstream registry host (e.g. docker.io) to ordered endpoint URLs. Keys sorted. With
   * `fallback` (the default) the runtime tries the upstream itself after the endpoints, so an
   * explicit trailing upstream endpoint is dropped; `fallback: false` keeps the list as written
   * and tells the runtime not to fall back.
   */
  mirrors: Array<{ registry: string; endpoints: string[]; fallback: boolean }>;
  /** PEM bundle trusted for the mirror endpoints; empty when none is configured. */
  caBundle: string;
  /** Hosts (host[:port]) that the CA bundle applies to: every endpoint host, sorted. */
  tlsHosts: string[];
}

export interface SitePlan {
  id: string;
  os: OsName;
  talos?: TalosTarget;
  kairos?: KairosTarget;
  clusterName: string;
  network: {
    subnet: string; // CIDR, e.g. 10.4.12.0/24
    prefix: number;
    gateway: string;
    vip?: string;
    dns: string[];
    searchDomains: string[];
    ntp: string[];
  };
  cluster: {
    podCidrs: string[];
    serviceCidrs: string[];
    /** Talos: https://<VIP or first control plane>:6443. Kairos: server URL for joins. */
    endpoint: string;
    allowSchedulingOnControlPlanes: boolean;
  };
  registries: RegistryPlan;
  localMirror?: string;
  sshKeys: string[];
  /**
   * How the site's secrets are stored. `ageRecipients` (the fleet's spec.secrets.ageRecipients,
   * validated age1… strings): when non-empty, secrets/<site>/secrets.yaml.age encrypted to all
   * of them. Always set by resolve; optional so hand-built plans need not carry it.
   */
  secrets?: { ageRecipients: string[] };
  labels: Record<string, string>;
  overlays: OverlayRef[]; // fleet + site level, for diagnostics; nodes carry their own full list
  nodes: NodePlan[];
  source: SourcePos;
  /** Catalogue files that fed this site, for the input digest. Sorted absolute paths. */
  inputFiles: string[];
}
