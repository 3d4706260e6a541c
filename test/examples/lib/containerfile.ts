// Static reading of the Containerfile, and the host tools edgeimg's code needs, derived from the
// code itself: the executables it names or spawns, the firmware and iPXE paths it looks for, and
// the Debian packages its error messages tell people to install.

export interface Stage {
  from: string;
  name?: string;
  instructions: Array<{ op: string; args: string }>;
}

/** Stages of a Containerfile: continuations joined, comments dropped. */
export function parseContainerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Containerfile: cannot read "${line}"`);
    const op = m[1]!.toUpperCase();
    const rest = m[2]!;
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      const from = f[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args[(a ?? b)!] ?? '');
      stages.push({ from, ...(f[2] ? { name: f[2] } : {}), instructions: [] });
    } else if (op === 'ARG' && stages.length === 0) {
      const a = /^(\w+)(?:=(.*))?$/.exec(rest)!;
      args[a[1]!] = a[2] ?? '';
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`Containerfile: ${op} before FROM`);
      stage.instructions.push({ op, args: rest });
    }
  }
  return { args, stages };
}

/** Packages a stage installs with apt-get install. */
export function aptPackages(stage: Stage): Set<string> {
  const out = new Set<string>();
  for (const { op, args } of stage.instructions) {
    if (op !== 'RUN') continue;
    for (const cmd of args.split(/&&|;|\|\|/)) {
      const m = /\bapt-get\s+install\s+(.*)$/.exec(cmd.trim());
      if (!m) continue;
      for (const word of m[1]!.split(/\s+/)) if (word && !word.startsWith('-')) out.add(word);
    }
  }
  return out;
}

/**
 * Packages every Debian 12 image has: the Essential set, and apt (priority required; the slim
 * images keep it). A Containerfile needs not install them.
 */
export const BASE_PACKAGES = new Set(['tar', 'gzip', 'coreutils', 'findutils', 'util-linux', 'dpkg', 'bash', 'grep', 'sed', 'apt']);

/** Executables edgeimg runs → the Debian 12 package that has them. */
export const TOOL_PACKAGES: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-system-aarch64': 'qemu-system-arm',
  xorriso: 'xorriso',
  setpriv: 'util-linux',
  git: 'git',
  tar: 'tar',
  'ssh-keygen': 'openssh-client',
  age: 'age',
  'age-keygen': 'age',
  mformat: 'mtools',
  mcopy: 'mtools',
  'mkfs.fat': 'dosfstools',
  'mkfs.vfat': 'dosfstools',
};

/**
 * Host paths edgeimg looks for (firmware, iPXE, helpers) → Debian 12 package; null for paths of
 * other distributions (Fedora, Arch, upstream QEMU), which the code tries as alternatives.
 * Longest prefix wins.
 */
export const PATH_PACKAGES: Array<[string, string | null]> = [
  ['/usr/share/OVMF/', 'ovmf'],
  ['/usr/share/ovmf/', 'ovmf'],
  ['/usr/share/qemu/OVMF.fd', 'ovmf'],
  ['/usr/share/AAVMF/', 'qemu-efi-aarch64'],
  ['/usr/share/qemu-efi-aarch64/', 'qemu-efi-aarch64'],
  ['/usr/share/seabios/', 'seabios'],
  ['/usr/lib/ipxe/qemu/', 'ipxe-qemu'],
  ['/usr/lib/ipxe', 'ipxe'],
  ['/usr/bin/setpriv', 'util-linux'],
  ['/bin/setpriv', 'util-linux'],
  ['/usr/share/edk2/', null],
  ['/usr/share/edk2-ovmf/', null],
  ['/usr/share/qemu/edk2-', null],
];

/**
 * Packages the running code needs without naming a file of them: QEMU loads them itself.
 * (qemu-system-x86 depends on both; named so that dropping QEMU's dependencies cannot lose them.)
 */
export const IMPLICIT_PACKAGES: Record<string, string> = {
  seabios: "QEMU's default BIOS: firmware: bios classes boot through it (verify --via usb, pxe)",
  'ipxe-qemu': "the NIC option ROMs QEMU loads; verify --via pxe boots through them",
};

export interface Requirement {
  packages: Map<string, string[]>;
  /** Things the code needs that the tables above cannot place: the test fails on each. */
  unknown: string[];
}

const HOST_PATH = /(['"`])((?:\/usr\/(?:share|lib|bin|sbin|libexec)|\/bin|\/sbin)\/[^'"`$]*)\1/g;
const SPAWN = /\b(?:execa|execaSync|execFile|execFileSync|spawn|spawnSync)\(\s*(['"`])([^'"`$]+)\1/g;
const LITERAL = /(['"`])([A-Za-z0-9_.+-]+)\1/g;
// "apt-get install xorriso`", "(install ovmf)", ": install ovmf;" — not ": install disk /dev/sda"
const INSTALL_HINT = /(?:apt-get install|[(:] ?install) ([a-z0-9][a-z0-9.+-]*(?: [a-z0-9][a-z0-9.+-]*)*)(?=[;,)`'"]|$)/gm;
/** Words after "install" in hints that are not package names. */
const NOT_PACKAGES = new Set(['it', 'with', 'them', 'or', 'the', 'sudo', 'and']);

/** What `files` (path → source text of src/) need on the host, as Debian packages with the reasons. */
export function requiredPackages(files: Map<string, string>): Requirement {
  const packages = new Map<string, string[]>();
  const unknown: string[] = [];
  const need = (pkg: string, why: string): void => {
    const list = packages.get(pkg) ?? [];
    if (!list.includes(why)) list.push(why);
    packages.set(pkg, list);
  };
  for (const [file, text] of files) {
    for (const m of text.matchAll(LITERAL)) {
      const pkg = TOOL_PACKAGES[m[2]!];
      if (pkg) need(pkg, `${file}: names the executable ${m[2]}`);
    }
    for (const m of text.matchAll(SPAWN)) {
      const tool = m[2]!.split('/').at(-1)!;
      if (!TOOL_PACKAGES[tool] && tool !== 'node') unknown.push(`${file}: spawns ${m[2]}, which TOOL_PACKAGES does not place in a Debian package`);
    }
    for (const m of text.matchAll(HOST_PATH)) {
      const path = m[2]!;
      const hit = PATH_PACKAGES.filter(([prefix]) => path.startsWith(prefix)).sort((a, b) => b[0].length - a[0].length)[0];
      if (!hit) unknown.push(`${file}: looks for ${path}, which PATH_PACKAGES does not place in a Debian package`);
      else if (hit[1]) need(hit[1], `${file}: looks for ${path}`);
    }
    for (const m of text.matchAll(INSTALL_HINT)) {
      for (const word of m[1]!.split(' ')) {
        if (NOT_PACKAGES.has(word)) break;
        need(word, `${file}: tells people to install ${word}`);
      }
    }
  }
  for (const [pkg, why] of Object.entries(IMPLICIT_PACKAGES)) need(pkg, why);
  return { packages, unknown };
}

/** Tools a build script checks for with `for tool in A B C; do` (images/*\/build.sh). */
export function scriptTools(script: string): string[] {
  return [...script.matchAll(/^for tool in ([^;]+); do/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
}

/** Tools the probe image build checks for → the Debian 12 package that has them. */
export const BUILD_TOOL_PACKAGES: Record<string, string> = {
  'apt-get': 'apt',
  'apt-cache': 'apt',
  dpkg: 'dpkg',
  'dpkg-deb': 'dpkg',
  gzip: 'gzip',
  sha256sum: 'coreutils',
  sort: 'coreutils',
  find: 'findutils',
  flock: 'util-linux',
  cpio: 'cpio',
};
