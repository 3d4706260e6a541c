// Small models of Kairos v3.5.1 behaviour, written from the upstream facts cited beside each
// function (no upstream code carried over).

/**
 * Mode yip gives a missing parent directory when it writes a file: the file's mode, plus the
 * owner-execute bit when the mode is below 0700.
 * mudler/yip v1.16.5 pkg/plugins/files.go, writeFile (then pkg/plugins/dir.go writePath creates
 * every missing ancestor with that same mode).
 */
export function yipParentDirMode(fileMode: number): number {
  return fileMode < 0o700 ? fileMode + 0o100 : fileMode;
}

/** Whether a user that is neither owner nor in the group can enter a directory of this mode. */
export function othersCanTraverse(dirMode: number): boolean {
  return (dirMode & 0o001) !== 0;
}

/**
 * provider-kairos v2.13.4 internal/provider/config/config.go, K3s.IsEnabled / K0s.IsEnabled:
 * a block runs only when `enabled` decoded to a true *bool. yaml.v3 (the decoder used) accepts
 * booleans and the YAML 1.1 words; a quoted "true" is a type error that stops the bootstrap.
 */
export function providerBlockRuns(block: unknown): boolean | 'decode-error' {
  if (typeof block !== 'object' || block === null) return false;
  const enabled = (block as { enabled?: unknown }).enabled;
  if (enabled === undefined) return false;
  if (typeof enabled === 'boolean') return enabled;
  return 'decode-error';
}

/** provider-kairos v2.13.4 internal/role/p2p/k8s.go NewK8sNodeWithDetector: k3s > k3s-agent > k0s > k0s-worker. */
export function blockProviderKairosStarts(config: Record<string, unknown>): string | undefined {
  return ['k3s', 'k3s-agent', 'k0s', 'k0s-worker'].find((b) => providerBlockRuns(config[b]) === true);
}

export interface NetworkdFile {
  name: string;
  match: Record<string, string>;
}

export interface Link {
  name: string;
  mac: string;
}

/**
 * systemd-networkd applies to a link the first .network file, in lexical file-name order, whose
 * [Match] section matches it (systemd.network(5)). Name= takes shell globs.
 */
export function networkdFileFor(files: NetworkdFile[], link: Link): string | undefined {
  const glob = (g: string, v: string): boolean => new RegExp(`^${g.replace(/[.+^${}()|\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')}$`).test(v);
  return [...files]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .find((f) =>
      Object.entries(f.match).every(([k, v]) => (k === 'MACAddress' ? v.toLowerCase() === link.mac.toLowerCase() : k === 'Name' ? v.split(/\s+/).some((g) => glob(g, link.name)) : false)),
    )?.name;
}

/**
 * kairos-init v0.5.16 pkg/bundled/cloudconfigs/05_network.yaml: the DHCP defaults Kairos writes
 * in rootfs.before and initramfs on systemd flavors.
 */
export const KAIROS_DEFAULT_NETWORK_FILES: NetworkdFile[] = [
  { name: '20-dhcp.network', match: { Name: 'en*' } },
  { name: '20-dhcp-legacy.network', match: { Name: 'eth*' } },
];

/** A [Match] section of a systemd INI file as key -> value. */
export function parseMatch(ini: string): Record<string, string> {
  const out: Record<string, string> = {};
  let inMatch = false;
  for (const line of ini.split('\n')) {
    const t = line.trim();
    if (t.startsWith('[')) inMatch = t === '[Match]';
    else if (inMatch && t.includes('=')) out[t.slice(0, t.indexOf('='))] = t.slice(t.indexOf('=') + 1);
  }
  return out;
}
