// Boot checks: every node's seed boots in QEMU with the probe image (a real Linux kernel that
// finds the cidata volume by label and hashes its files), and the probe's report must match
// the manifest byte for byte. ISO seeds attach as CD-ROMs, FAT seeds as USB disks.

import { mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Manifest, ManifestArtifact } from '../manifest/manifest.js';
import type { CheckResult } from './static.js';
import { chooseAccel, runQemu } from './qemu.js';
import { compareProbeReport, parseProbeTranscript, type ExpectedFile } from './probe-report.js';
import { STICK_INFO_NAME, stickInfoFromManifest, stickInfoText } from '../media/stick-info.js';
import { locateProbeImage } from './probe-image.js';
import { realImageBoot } from './real-image.js';
import { confinedArtifactProblem, shownPath } from './artifact-read.js';
import { mapLimit } from '../util/pool.js';
import { EnvironmentError, plural } from '../util/diagnostics.js';

export interface BootOptions {
  jobs?: number;
  timeoutMs: number;
  log: (line: string) => void;
  signal?: AbortSignal;
  imagesDir?: string;
  /** Force an accelerator instead of probing /dev/kvm. */
  accel?: 'kvm' | 'tcg';
  /** Only these nodes (default: all). */
  nodes?: string[];
}

export async function bootChecks(siteDir: string, manifest: Manifest, partial: Partial<BootOptions>): Promise<CheckResult[]> {
  const opts: BootOptions = { timeoutMs: 120_000, log: () => {}, ...partial };
  const jobs = Math.max(1, opts.jobs ?? availableParallelism());
  const accel = await chooseAccel(opts.accel, opts.log);
  const boots: Array<{ node: Manifest['nodes'][number]; seed: ManifestArtifact; data: ManifestArtifact[] }> = [];
  for (const node of manifest.nodes) {
    if (opts.nodes && !opts.nodes.includes(node.name)) continue;
    const arts = manifest.artifacts.filter((a) => a.node === node.name);
    const data = arts.filter((a) => a.kind === 'user-data' || a.kind === 'meta-data' || a.kind === 'network-config');
    for (const seed of arts.filter((a) => a.kind === 'seed-iso' || a.kind === 'seed-img')) boots.push({ node, seed, data });
  }
  // The probe image is needed only for boots without a cached real image; looked up on first use.
  const probeImage = (arch: 'amd64' | 'arm64') => {
    const img = locateProbeImage(opts.imagesDir, arch);
    if (!img) throw new EnvironmentError(`no ${arch} probe image: run \`make probe-image\` first`);
    return img;
  };
  const logDir = join(siteDir, 'verify');
  await mkdir(logDir, { recursive: true });

  return mapLimit(boots, jobs, async ({ node, seed, data }): Promise<CheckResult> => {
    const medium = seed.kind === 'seed-iso' ? 'cdrom' : 'usb';
    // the manifest is input: only a regular file inside the site directory is ever attached
    const confined = [seed, ...data].map((a) => ({ a, p: '' }));
    for (const c of confined) c.p = (await confinedArtifactProblem(siteDir, c.a.path)) ?? '';
    const bad = confined.find((c) => c.p !== '');
    if (bad) return { check: `boot-${medium}`, node: node.name, ok: false, message: `not booted: ${shownPath(bad.a.path)} ${bad.p}` };
    // a cached real boot image for the node's class takes precedence over the probe image
    const real = await realImageBoot({
      siteDir, manifest, node, seedPath: join(siteDir, seed.path), medium,
      imagesDir: opts.imagesDir, timeoutMs: opts.timeoutMs, accel, signal: opts.signal, log: opts.log,
    });
    if (real) return real;
    const check = `boot-${medium}`;
    const img = probeImage(node.arch);
    const nonce = randomBytes(8).toString('hex');
    const serialLog = join(logDir, `${node.name}-${seed.kind}.log`);
    const res = await runQemu({
      arch: node.arch,
      kernel: img.kernel,
      initrd: img.initrd,
      append: `edgeimg.nonce=${nonce}`,
      media: [{ path: join(siteDir, seed.path), kind: medium }],
      timeoutMs: opts.timeoutMs,
      serialLog,
      accel,
      signal: opts.signal,
    });
    const base = { check, node: node.name, log: serialLog };
    if (res.timedOut) return { ...base, ok: false, message: `${seed.path}: guest timed out after ${Math.round(opts.timeoutMs / 1000)} s (serial log ${serialLog})` };
    const report = parseProbeTranscript(res.serial, nonce);
    const expectedFiles: ExpectedFile[] = data.map((a) => ({ name: a.path.split('/').pop()!, sha256: a.sha256, size: a.bytes }));
    if (seed.kind === 'seed-img') {
      // the stick's EDGEIMG.TXT, recomputed from the manifest and the node's meta-data
      const meta = data.find((a) => a.kind === 'meta-data');
      const iid = meta ? (/^instance-id: (\S+)$/m.exec(await readFile(join(siteDir, meta.path), 'utf8').catch(() => ''))?.[1] ?? '') : '';
      expectedFiles.push({ name: STICK_INFO_NAME, data: stickInfoText(stickInfoFromManifest(manifest, node, iid)) });
    }
    const problems = compareProbeReport(report, expectedFiles);
    // identity, as the guest read it: the seed that booted must be this node's of this site
    const siteId = basename(siteDir);
    const iidPrefix = `iid-${siteId}.${node.name}.`;
    if (report.status === 'ok' && !report.node) problems.push('the probe did not report whose seed it read (no NODE line)');
    else if (report.node && (!report.node.instanceId.startsWith(iidPrefix) || report.node.hostname !== node.hostname)) {
      problems.push(`the seed that booted is ${report.node.hostname || '?'} (${report.node.instanceId.slice(0, 80) || '?'}), not ${siteId}/${node.name} (${node.hostname})`);
    }
    const secs = (res.durationMs / 1000).toFixed(1);
    if (problems.length > 0) return { ...base, ok: false, message: `${seed.path} (${node.arch}, ${accel}, ${secs} s): ${problems.join('; ')}` };
    const v = report.volume!;
    return {
      ...base,
      ok: true,
      message: `${seed.path} (${node.arch}, ${accel}, ${secs} s): kernel found ${v.fstype} "${v.label}" on ${v.device}; ${plural(data.length, 'file')} match the manifest`,
    };
  });
}
