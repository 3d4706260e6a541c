// Seed-media timing: our in-process writers vs the usual external tools.
//
//   node --import tsx bench/seed-compare.ts [runs]
//
// compareSeedTools() is reusable by the fleet benchmark: give it a sample of seeds, get
// milliseconds per seed for each method (undefined when a tool is not installed).

import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { buildSeedImg, buildSeedIso, seedFileList, writeSparseFileSync, type SeedFiles } from '../src/media/index.js';
import { sha256Hex } from '../src/util/fsx.js';

export interface SeedCompareResult {
  seeds: number;
  /** buildSeedIso, in memory. */
  oursIsoMs: number;
  /** buildSeedIso + writing seed.iso to disk (what the CLI does). */
  oursIsoWriteMs: number;
  /** buildSeedImg (FAT32, 33 MiB), in memory. */
  oursImgMs: number;
  /** buildSeedImg + sha256 over the whole image + sparse write of seed.img (what the build does). */
  oursImgWriteMs: number;
  /** Logical size of one seed.img. */
  imgBytes: number;
  /** Space one sparsely written seed.img takes on the bench's temporary filesystem (st_blocks * 512). */
  imgDiskBytes: number;
  /** cloud-localds seed.iso user-data meta-data --network-config=... (genisoimage inside). */
  cloudLocaldsMs?: number;
  /** xorriso -as mkisofs -J -R -V cidata. */
  xorrisoMs?: number;
  /** genisoimage -J -R -V cidata, called directly. */
  genisoimageMs?: number;
  /** cloud-localds time / our in-memory ISO time. */
  speedupVsCloudLocalds?: number;
}

async function has(tool: string): Promise<boolean> {
  const r = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
  return r.exitCode === 0;
}

async function timeEach(n: number, fn: (i: number) => Promise<void> | void): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return (performance.now() - t0) / n;
}

/**
 * Time seed creation for each sample (cycled to `runs` seeds per method, default: one pass
 * over the samples, at least 20). Returns average milliseconds per seed.
 */
export async function compareSeedTools(samples: SeedFiles[], runs = Math.max(20, samples.length)): Promise<SeedCompareResult> {
  if (samples.length === 0) throw new Error('compareSeedTools: no samples');
  const dir = await mkdtemp(join(tmpdir(), 'edgeimg-seed-bench-'));
  try {
    const epoch = 1700000000;
    const sample = (i: number): SeedFiles => samples[i % samples.length] as SeedFiles;

    // input files on disk for the external tools, one directory per sample
    const inputs: string[] = [];
    for (let s = 0; s < samples.length; s++) {
      const d = join(dir, `in-${s}`);
      await execa('mkdir', ['-p', d]);
      for (const f of seedFileList(samples[s] as SeedFiles)) await writeFile(join(d, f.name), f.data);
      inputs.push(d);
    }
    const input = (i: number): string => inputs[i % inputs.length] as string;

    // warm up the JIT so we measure steady-state per-seed cost
    for (let i = 0; i < 20; i++) buildSeedIso(sample(i), epoch);
    for (let i = 0; i < 5; i++) buildSeedImg(sample(i), epoch);

    const oursIsoMs = await timeEach(runs * 10, (i) => void buildSeedIso(sample(i), epoch));
    // written as the build writes it: one synchronous create+write per seed
    const oursIsoWriteMs = await timeEach(runs, (i) => writeFileSync(join(dir, `ours-${i}.iso`), buildSeedIso(sample(i), epoch), { flag: 'wx', mode: 0o600 }));
    const oursImgMs = await timeEach(runs, (i) => void buildSeedImg(sample(i), epoch));
    // as the build writes it: manifest sha256 over the full image, then a sparse write
    const oursImgWriteMs = await timeEach(runs, (i) => {
      const img = buildSeedImg(sample(i), epoch);
      sha256Hex(img);
      writeSparseFileSync(join(dir, `ours-${i}.img`), img, { flag: 'wx', mode: 0o600 });
    });
    const st = statSync(join(dir, 'ours-0.img'));
    const result: SeedCompareResult = { seeds: runs, oursIsoMs, oursIsoWriteMs, oursImgMs, oursImgWriteMs, imgBytes: st.size, imgDiskBytes: st.blocks * 512 };

    if (await has('cloud-localds')) {
      result.cloudLocaldsMs = await timeEach(runs, async (i) => {
        const d = input(i);
        await execa('cloud-localds', [
          join(dir, `cl-${i}.iso`),
          join(d, 'user-data'),
          join(d, 'meta-data'),
          `--network-config=${join(d, 'network-config')}`,
        ]);
      });
      result.speedupVsCloudLocalds = result.cloudLocaldsMs / oursIsoMs;
    }
    if (await has('xorriso')) {
      result.xorrisoMs = await timeEach(runs, async (i) => {
        const d = input(i);
        await execa('xorriso', ['-as', 'mkisofs', '-quiet', '-o', join(dir, `x-${i}.iso`), '-V', 'cidata', '-J', '-R', join(d, 'user-data'), join(d, 'meta-data'), join(d, 'network-config')]);
      });
    }
    if (await has('genisoimage')) {
      result.genisoimageMs = await timeEach(runs, async (i) => {
        const d = input(i);
        await execa('genisoimage', ['-quiet', '-o', join(dir, `g-${i}.iso`), '-V', 'cidata', '-J', '-R', join(d, 'user-data'), join(d, 'meta-data'), join(d, 'network-config')]);
      });
    }
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A plausible seed of realistic size (a few KiB of user-data, like a Talos machine config). */
export function sampleSeed(i: number): SeedFiles {
  const host = `node-${String(i).padStart(3, '0')}`;
  return {
    userData: `#cloud-config\nhostname: ${host}\n` + `# ${'x'.repeat(70)}\n`.repeat(80),
    metaData: `instance-id: ${host}\nlocal-hostname: ${host}\n`,
    networkConfig: `version: 2\nethernets:\n  eth0:\n    addresses: [10.4.12.${10 + (i % 200)}/24]\n    gateway4: 10.4.12.1\n`,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const runs = Number(process.argv[2] ?? 20);
  const samples = Array.from({ length: runs }, (_, i) => sampleSeed(i));
  const r = await compareSeedTools(samples, runs);
  const fmt = (v: number | undefined): string => (v === undefined ? 'n/a (not installed)' : `${v.toFixed(3)} ms/seed`);
  console.log(`seeds per method: ${r.seeds}`);
  console.log(`ours  buildSeedIso (memory)      ${fmt(r.oursIsoMs)}`);
  console.log(`ours  buildSeedIso + write file  ${fmt(r.oursIsoWriteMs)}`);
  console.log(`ours  buildSeedImg (FAT32, memory) ${fmt(r.oursImgMs)}`);
  console.log(`ours  buildSeedImg + sha256 + sparse write  ${fmt(r.oursImgWriteMs)}`);
  console.log(`seed.img: ${r.imgBytes} bytes logical, ${r.imgDiskBytes} bytes on disk (sparse)`);
  console.log(`cloud-localds                    ${fmt(r.cloudLocaldsMs)}`);
  console.log(`xorriso -as mkisofs -J -R        ${fmt(r.xorrisoMs)}`);
  console.log(`genisoimage -J -R                ${fmt(r.genisoimageMs)}`);
  if (r.speedupVsCloudLocalds !== undefined) console.log(`speed-up vs cloud-localds: ${r.speedupVsCloudLocalds.toFixed(0)}x`);
}
