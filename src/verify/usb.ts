// `verify --boot --via usb`: boot each node's field kit through real firmware, as a technician
// would: no `-kernel`, the sticks attached as USB mass storage, the firmware (OVMF for amd64
// UEFI, SeaBIOS for amd64 BIOS, AAVMF for arm64) picks the class boot stick and boots it.
//
// Kits:
//   two sticks   the class boot stick (from the image cache, as the manifest pins it) + the
//                node's seed stick (nodes/<node>/seed.img)
//   one stick    Kairos: nodes/<node>/kairos-stick.iso (class live ISO + config.yaml)
//
// Real Talos and Kairos images cannot be booted here, so the class image must be a stand-in
// (images/standin/): it boots like the class image and then follows Talos's or Kairos's seed
// discovery, printing the probe transcript. The per-run nonce reaches it through QEMU fw_cfg,
// since a firmware boot's kernel command line is fixed inside the image.

import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Manifest, ManifestArtifact, ManifestBootMedium, ManifestNode } from '../manifest/manifest.js';
import type { CheckResult } from './static.js';
import { chooseAccel, runQemu, type Accel, type QemuFirmware, type QemuMedium } from './qemu.js';
import { compareProbeReport, parseProbeTranscript, type ExpectedFile, type ProbeReport } from './probe-report.js';
import { STICK_INFO_NAME, stickInfoFromManifest, stickInfoText } from '../media/stick-info.js';
import { confinedArtifactProblem, shownPath } from './artifact-read.js';
import { guestFirmware } from './real-image.js';
import { requireVerifiedAsset } from '../images/cache.js';
import { standinMarker, type StandinInfo } from '../images/standin.js';
import { peekIso } from '../media/iso9660/peek.js';
import { mapLimit } from '../util/pool.js';
import { EnvironmentError, plural } from '../util/diagnostics.js';

export interface UsbBootOptions {
  cacheDir: string;
  jobs?: number;
  /** Hard limit per boot. Default: 300 s (firmware + GRUB + kernel under TCG take a while). */
  timeoutMs?: number;
  log: (line: string) => void;
  signal?: AbortSignal;
  accel?: Accel;
  /** Only these nodes (default: all). */
  nodes?: string[];
}

export const USB_TIMEOUT_MS = 300_000;

interface Kit {
  node: ManifestNode;
  kind: 'two-stick' | 'one-stick';
  /** The stick the firmware boots (class stick, or the Kairos one-stick ISO). */
  boot: string;
  /** The seed stick, for the two-stick kit. */
  seed?: ManifestArtifact;
  oneStick?: ManifestArtifact;
  data: ManifestArtifact[];
  standin: StandinInfo;
}

/** The firmware a node's class boots with; a UEFI class never silently falls back to BIOS here. */
function firmwareFor(node: ManifestNode, varsDir: string): { firmware?: QemuFirmware; name: string } {
  const f = guestFirmware(node.arch, node.firmware, varsDir);
  if (f.error) throw new EnvironmentError(`${f.error}; --via usb boots through the class's real firmware`);
  if (node.arch === 'amd64' && node.firmware === 'uefi' && !f.firmware) {
    throw new EnvironmentError('no OVMF found (/usr/share/OVMF): install ovmf; --via usb boots a UEFI class through UEFI firmware');
  }
  return { ...(f.firmware ? { firmware: f.firmware } : {}), name: node.arch === 'arm64' ? 'AAVMF' : node.firmware === 'uefi' ? 'OVMF' : 'SeaBIOS' };
}

/** The class boot stick a node takes, verified against the manifest's pin. */
async function classStickOf(manifest: Manifest, node: ManifestNode, cacheDir: string): Promise<{ file: string; medium: ManifestBootMedium } | { problem: string }> {
  const medium = manifest.bootMedia?.find((b) => b.hardwareClass === node.hardwareClass);
  if (!medium) return { problem: `the manifest names no class boot stick for ${node.hardwareClass} (built before class sticks existed: rebuild)` };
  if (!medium.sha256 || medium.bytes === undefined) {
    return { problem: `the class boot stick ${medium.name} was not pinned when the site was built (edgeimg images import/pull, or make standin-images and build --allow-standin; then rebuild)` };
  }
  const lock = { path: 'the manifest', pins: new Map([[medium.asset, { sha256: medium.sha256, size: medium.bytes }]]) };
  try {
    const r = await requireVerifiedAsset(cacheDir, lock, medium.asset);
    return { file: r.file, medium };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

export async function usbKitChecks(siteDir: string, manifest: Manifest, o: UsbBootOptions): Promise<CheckResult[]> {
  const jobs = Math.max(1, o.jobs ?? availableParallelism());
  const timeoutMs = o.timeoutMs ?? USB_TIMEOUT_MS;
  const accel = await chooseAccel(o.accel, o.log);
  const results: CheckResult[] = [];
  const kits: Kit[] = [];
  for (const node of manifest.nodes) {
    if (o.nodes && !o.nodes.includes(node.name)) continue;
    const arts = manifest.artifacts.filter((a) => a.node === node.name);
    const data = arts.filter((a) => a.kind === 'user-data' || a.kind === 'meta-data' || a.kind === 'network-config');
    const seed = arts.find((a) => a.kind === 'seed-img');
    const oneStick = arts.find((a) => a.kind === 'kairos-stick');
    const fail = (check: string, message: string): void => {
      results.push({ check, node: node.name, ok: false, message });
    };
    for (const a of [seed, oneStick, ...data]) {
      if (!a) continue;
      const p = await confinedArtifactProblem(siteDir, a.path);
      if (p) {
        fail(a.kind === 'kairos-stick' ? 'boot-usb-onestick' : 'boot-usb', `not booted: ${shownPath(a.path)} ${p}`);
        continue;
      }
    }
    if (!seed && !oneStick) {
      fail('boot-usb', 'no seed stick image in the manifest: build with --media img (and, for Kairos one-stick kits, onestick)');
      continue;
    }
    if (seed) {
      const cls = await classStickOf(manifest, node, o.cacheDir);
      if ('problem' in cls) fail('boot-usb', `not booted: class boot stick: ${cls.problem}`);
      else {
        const standin = standinMarker(cls.file);
        if (!standin) fail('boot-usb', `not booted: ${cls.file} is the real ${manifest.os} image; --via usb needs a stand-in's transcript (make standin-images), real images boot with --via seed (docs/real-images.md)`);
        else kits.push({ node, kind: 'two-stick', boot: cls.file, seed, data, standin });
      }
    }
    if (oneStick) {
      const file = join(siteDir, oneStick.path);
      const standin = standinMarker(file);
      if (!standin) fail('boot-usb-onestick', `not booted: ${oneStick.path} is not built on a stand-in class image; --via usb needs a stand-in's transcript`);
      else kits.push({ node, kind: 'one-stick', boot: file, oneStick, data, standin });
    }
  }
  const logDir = join(siteDir, 'verify');
  await mkdir(logDir, { recursive: true });
  const booted = await mapLimit(kits, jobs, (kit) => bootKit(siteDir, manifest, kit, { ...o, accel, timeoutMs, logDir }));
  return [...results, ...booted];
}

async function bootKit(siteDir: string, manifest: Manifest, kit: Kit, o: UsbBootOptions & { accel: Accel; timeoutMs: number; logDir: string }): Promise<CheckResult> {
  const { node } = kit;
  const check = kit.kind === 'two-stick' ? 'boot-usb' : 'boot-usb-onestick';
  const serialLog = join(o.logDir, `${node.name}-${kit.kind === 'two-stick' ? 'usb' : 'onestick'}.log`);
  const base = { check, node: node.name, log: serialLog };
  const varsDir = await mkdtemp(join(tmpdir(), 'edgeimg-fw-'));
  try {
    const fw = firmwareFor(node, varsDir);
    const wantKind = manifest.os === 'talos' ? 'talos-like' : 'kairos-like';
    if (kit.standin.standin !== wantKind) return { ...base, ok: false, message: `the class image is a ${kit.standin.standin} stand-in, but the site runs ${manifest.os}` };
    if (kit.standin.arch !== node.arch) return { ...base, ok: false, message: `the class image is an ${kit.standin.arch} stand-in, but ${node.name} is ${node.arch}` };
    const nonce = randomBytes(8).toString('hex');
    // the class stick boots first; the seed stick has no boot index (SeaBIOS would otherwise try
    // its FAT boot sector)
    const media: QemuMedium[] = [{ path: kit.boot, kind: 'usb', bootIndex: 0 }];
    if (kit.seed) media.push({ path: join(siteDir, kit.seed.path), kind: 'usb' });
    const res = await runQemu({
      arch: node.arch,
      media,
      ...(fw.firmware ? { firmware: fw.firmware } : {}),
      fwCfg: [
        { name: 'opt/edgeimg/nonce', value: nonce },
        { name: 'opt/edgeimg/media', value: String(media.length) },
      ],
      memoryMiB: 512,
      timeoutMs: o.timeoutMs,
      serialLog,
      accel: o.accel,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const what = `${kit.kind === 'two-stick' ? `${basename(kit.boot)} + ${kit.seed!.path}` : kit.oneStick!.path} (${node.arch}, ${fw.name}, ${o.accel}`;
    if (res.timedOut) return { ...base, ok: false, message: `${what}): no transcript within ${Math.round(o.timeoutMs / 1000)} s (serial log ${serialLog})` };
    const secs = (res.durationMs / 1000).toFixed(1);
    const report = parseProbeTranscript(res.serial, nonce);
    const problems = await kitProblems(siteDir, manifest, kit, report);
    if (problems.length > 0) return { ...base, ok: false, message: `${what}, ${secs} s): ${problems.join('; ')}` };
    const v = report.volume!;
    return {
      ...base,
      ok: true,
      message: `${what}, ${secs} s): ${fw.name} booted ${kit.standin.standin} from ${report.boot?.device ?? '?'}; it found ${report.source === 'live' ? 'config.yaml on its own medium' : `${v.fstype} "${v.label}" on ${v.device}`}; ${plural(report.files.length, 'file')} match the manifest`,
    };
  } finally {
    await rm(varsDir, { recursive: true, force: true });
  }
}

/** Everything wrong with a kit's transcript; empty means the kit verified. */
export async function kitProblems(siteDir: string, manifest: Manifest, kit: Pick<Kit, 'node' | 'kind' | 'boot' | 'data' | 'standin'>, report: ProbeReport): Promise<string[]> {
  const { node } = kit;
  const meta = kit.data.find((a) => a.kind === 'meta-data');
  const iid = meta ? (/^instance-id: (\S+)$/m.exec(await readFile(join(siteDir, meta.path), 'utf8').catch(() => ''))?.[1] ?? '') : '';
  const info = stickInfoFromManifest(manifest, node, iid);
  let expected: ExpectedFile[];
  if (kit.kind === 'two-stick') {
    expected = kit.data.map((a) => ({ name: a.path.split('/').pop()!, sha256: a.sha256, size: a.bytes }));
    expected.push({ name: STICK_INFO_NAME, data: stickInfoText(info) });
  } else {
    const ud = kit.data.find((a) => a.kind === 'user-data');
    expected = [
      ...(ud ? [{ name: 'config.yaml', sha256: ud.sha256, size: ud.bytes }] : []),
      { name: STICK_INFO_NAME, data: stickInfoText(info, 'kairos-stick') },
    ];
  }
  const problems: string[] = [];
  if (report.standin !== undefined && report.standin !== kit.standin.standin) problems.push(`the guest ran ${report.standin}, expected ${kit.standin.standin}`);
  if (report.status !== 'incomplete' && report.standin === undefined) problems.push('the guest did not say which stand-in ran (no STANDIN line): not booted from the class image?');
  const peek = peekIso(kit.boot);
  if (report.boot && peek && report.boot.label !== peek.volumeId) problems.push(`the guest booted from "${report.boot.label}", not the class image "${peek.volumeId}"`);
  for (const s of report.skipped) problems.push(`passed over ${s.device}: ${s.reason}`);
  problems.push(...compareProbeReport(report, expected));
  if (kit.kind === 'one-stick' && report.volume && report.source !== 'live') problems.push('the configuration did not come from the stick\'s own config.yaml');
  if (kit.kind === 'two-stick' && report.source === 'live') problems.push('the class stick itself carries a config.yaml: a class stick must be the same for every node');
  const siteId = basename(siteDir);
  if (report.status === 'ok' && !report.node) problems.push('the guest did not report whose configuration it read (no NODE line)');
  else if (report.node && (!report.node.instanceId.startsWith(`iid-${siteId}.${node.name}.`) || report.node.hostname !== node.hostname)) {
    problems.push(`the stick that booted is ${report.node.hostname || '?'}'s (${report.node.instanceId.slice(0, 80) || '?'}), not ${siteId}/${node.name} (${node.hostname}): wrong node's stick`);
  }
  return [...new Set(problems)];
}
