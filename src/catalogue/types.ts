// The catalogue as written by users (after schema validation), before resolution.
// Field names here are the catalogue's public format: schemas/catalogue.schema.json.

import type { YamlDoc } from './yaml.js';

export const API_VERSION = 'edgeimg.dev/v1alpha1';

export interface TalosVersions {
  version?: string;
  kubernetesVersion?: string;
}
export interface KairosVersions {
  version?: string;
  flavor?: string;
  provider?: 'k3s' | 'k0s';
  providerVersion?: string;
}

export interface FleetSpec {
  os: 'talos' | 'kairos';
  talos?: TalosVersions;
  kairos?: KairosVersions;
  cluster?: { podCidrs?: string[]; serviceCidrs?: string[] };
  dns?: { servers?: string[]; searchDomains?: string[] };
  ntp?: string[];
  registries?: { mirrors?: Record<string, string[] | { endpoints: string[]; fallback?: boolean }>; caBundle?: string };
  sshKeys?: string[];
  /** Site secrets storage: encrypt them at rest to these age recipients (docs/secrets.md). */
  secrets?: { ageRecipients?: string[] };
  overlays?: string[];
}

export interface HardwareSpec {
  arch: 'amd64' | 'arm64';
  firmware: 'uefi' | 'bios';
  installDisk: { path?: string; selector?: { model?: string; size?: string; type?: 'ssd' | 'hdd' | 'nvme' | 'sd'; busPath?: string } };
  nic: { name?: string; selector?: { hardwareAddr?: string; driver?: string; busPath?: string } };
  talos?: {
    extensions?: string[];
    extraKernelArgs?: string[];
    overlay?: { image: string; name: string; options?: Record<string, unknown> };
  };
  kairos?: { baseImage?: string };
  overlays?: string[];
}

export interface NodeSpec {
  name: string;
  hostname?: string;
  role?: 'controlplane' | 'worker';
  hardwareClass?: string;
  offset?: number;
  address?: string;
  mac?: string;
  labels?: Record<string, string>;
  overlays?: string[];
}

export interface ProfileSpec {
  hardwareClass: string;
  gatewayOffset?: number;
  vipOffset?: number;
  mirror?: { offset: number; port?: number; scheme?: 'http' | 'https' };
  schedulable?: boolean;
  nodes: NodeSpec[];
}

export interface SiteSpec {
  profile?: string;
  os?: 'talos' | 'kairos';
  talos?: TalosVersions;
  kairos?: KairosVersions;
  subnet: string;
  gateway?: string;
  vip?: string;
  mirror?: string;
  schedulable?: boolean;
  nodes?: NodeSpec[];
  overlays?: string[];
}

export interface Entry<T> {
  name: string;
  spec: T;
  labels: Record<string, string>;
  doc: YamlDoc;
}

export interface Catalogue {
  root: string; // absolute catalogue directory
  fleet?: Entry<FleetSpec>;
  hardware: Map<string, Entry<HardwareSpec>>;
  profiles: Map<string, Entry<ProfileSpec>>;
  sites: Map<string, Entry<SiteSpec>>;
  /** sha256 of every file read (catalogue documents, overlays, CA bundles), by absolute path. */
  fileDigests: Map<string, string>;
}
