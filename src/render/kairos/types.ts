// The parts of a Kairos cloud-config this renderer writes. Kairos reads the file with yip:
// top-level cloud-init keys (users, hostname) run in yip's `boot` stage, `stages` holds
// yip steps per stage, and the provider blocks (k3s, k0s, ...) are read by provider-kairos.

/** A yip `files` entry. Permissions are numbers (yip's File.Permissions is a uint32). */
export interface YipFile {
  path: string;
  permissions: number;
  owner: number;
  group: number;
  content: string;
}

/** One yip stage step; only the fields this renderer uses. */
export interface YipStep {
  name: string;
  hostname?: string;
  files?: YipFile[];
  commands?: string[];
  timesyncd?: Record<string, string>;
}

export interface KairosUser {
  name: string;
  groups: string[];
  lock_passwd: boolean;
  ssh_authorized_keys?: string[];
}

export interface KairosInstall {
  auto: boolean;
  device: string;
  reboot: boolean;
}

/** provider-kairos `k3s`, `k3s-agent`, `k0s` and `k0s-worker` blocks share this shape. */
export interface ProviderBlock {
  enabled: boolean;
  args: string[];
  env?: Record<string, string>;
}

/** What a Kubernetes provider (k3s or k0s) adds to the shared cloud-config. */
export interface ProviderParts {
  /** Top-level keys, e.g. `{ k3s: {...} }`. */
  blocks: Record<string, ProviderBlock>;
  /** Files the provider (k3s, k0s, containerd) reads at start-up; written in the initramfs stage on every boot. */
  files: YipFile[];
}

export const MODE_PUBLIC = 0o644;
export const MODE_SECRET = 0o600;

export function rootFile(path: string, content: string, permissions: number = MODE_PUBLIC): YipFile {
  return { path, permissions, owner: 0, group: 0, content };
}
