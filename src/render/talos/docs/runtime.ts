// Runtime and block documents that Talos 1.14 generates: unattended install (replacing
// machine.install), the workload-isolation security profile and periodic filesystem trim.

import type { DiskPlan } from '../../../catalogue/plan.js';
import type { RenderContext } from '../context.js';
import { FILESYSTEM_TRIM_INTERVAL } from '../defaults.js';
import { typedDocument, type TalosDocument } from '../document.js';

const celString = (s: string): string => JSON.stringify(s);
const hasWildcard = (s: string): boolean => /[*?[]/.test(s);
/** A v1alpha1 glob (`WDC*`) as an RE2 pattern for CEL's standard `matches`. */
const globToRe2 = (glob: string): string =>
  '^' + glob.replace(/[.+^${}()|\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.') + '$';
const matchField = (field: string, value: string): string =>
  hasWildcard(value) ? `${field}.matches(${celString(globToRe2(value))})` : `${field} == ${celString(value)}`;

// The disk-locator CEL environment's size constants: kB..EB (1000) and KiB..EiB (1024).
const SIZE_UNITS: Record<string, string> = {
  B: '1u', KB: 'kB', MB: 'MB', GB: 'GB', TB: 'TB', PB: 'PB', EB: 'EB',
  KIB: 'KiB', MIB: 'MiB', GIB: 'GiB', TIB: 'TiB', PIB: 'PiB', EIB: 'EiB',
};

/** ">= 100GB" / "4GB" (v1alpha1 diskSelector syntax) as a CEL comparison on disk.size. */
function sizeCel(size: string): string {
  const m = /^\s*(<=|>=|<|>|==)?\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(size);
  const unit = m ? SIZE_UNITS[(m[3] || 'B').toUpperCase()] : undefined;
  if (!m || !unit) throw new Error(`install disk size selector ${JSON.stringify(size)} is not understood`);
  const op = m[1] ?? '==';
  return unit === '1u' ? `disk.size ${op} ${m[2]}u` : `disk.size ${op} ${m[2]}u * ${unit}`;
}

const TYPE_CEL: Record<NonNullable<NonNullable<DiskPlan['selector']>['type']>, string> = {
  ssd: '!disk.rotational',
  hdd: 'disk.rotational',
  nvme: 'disk.transport == "nvme"',
  sd: 'disk.transport == "mmc"',
};

/**
 * The guards Talos 1.13 adds itself to every v1alpha1 install-disk selector
 * (InstallConfig.DiskMatchExpression): a disk with a transport (no DM devices), writable, and
 * not a CD-ROM. 1.14's UnattendedInstallConfig takes the first disk its expression matches
 * with no such filter, so they are spelled out; otherwise the boot or seed CD-ROM could win.
 */
export const INSTALL_DISK_GUARDS = ['disk.transport != ""', '!disk.readonly', '!disk.cdrom'] as const;

/** CEL (disk locator) for the install disk: the guards, then the path or the selector. */
export function installDiskCel(disk: DiskPlan): string {
  return [...INSTALL_DISK_GUARDS, `(${installDiskTarget(disk)})`].join(' && ');
}

function installDiskTarget(disk: DiskPlan): string {
  if (disk.path) return `disk.dev_path == ${celString(disk.path)}`;
  const sel = disk.selector;
  const terms: string[] = [];
  if (sel?.model) terms.push(matchField('disk.model', sel.model));
  if (sel?.size) terms.push(sizeCel(sel.size));
  if (sel?.type) terms.push(TYPE_CEL[sel.type]);
  if (sel?.busPath) terms.push(matchField('disk.bus_path', sel.busPath));
  if (terms.length === 0) throw new Error('install disk has neither a path nor a selector');
  return terms.join(' && ');
}

export function unattendedInstallConfig(ctx: RenderContext): TalosDocument[] {
  return [
    typedDocument('UnattendedInstallConfig', {
      installer: { image: ctx.installerImage },
      provisioning: { diskSelector: { match: installDiskCel(ctx.node.hardware.disk) }, wipe: false },
    }),
  ];
}

export function securityProfileConfig(_ctx: RenderContext): TalosDocument[] {
  return [typedDocument('SecurityProfileConfig', { workloadIsolation: true })];
}

export function filesystemTrimConfig(_ctx: RenderContext): TalosDocument[] {
  return [typedDocument('FilesystemTrimConfig', { interval: FILESYSTEM_TRIM_INTERVAL })];
}
