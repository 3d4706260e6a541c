// Fleet benchmark: a synthetic 3,400-store fleet (3 Talos control planes each) in the
// catalogue's own format, with site secrets already present, built by the real CLI; in the
// same run, cloud-localds on a sample of the same seeds, and cold PKI per site.
// Prints one `bench:` line at the end. A benchmark, not a test: nothing here asserts.

import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { generateTalosSecrets, serializeSiteSecrets } from '../src/secrets/index.js';
import { compareSeedTools } from './seed-compare.js';
import { sticksBench } from './sticks.js';
import { serveBench } from './serve.js';
import type { SeedFiles } from '../src/media/seed.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const SITES = Number(process.env.BENCH_SITES ?? 3400);
const SAMPLE = Number(process.env.BENCH_SAMPLE ?? 30);
const PKI_SAMPLES = Number(process.env.BENCH_PKI_SAMPLES ?? 3);

const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

function siteId(i: number): string {
  return `store-${String(i + 1).padStart(4, '0')}`;
}

function mac(i: number, n: number): string {
  const v = i * 8 + n;
  return ['02', 'ed', 'ge', (v >> 16) & 255, (v >> 8) & 255, v & 255]
    .map((x) => (typeof x === 'number' ? x.toString(16).padStart(2, '0') : x.replace('ge', '9e')))
    .join(':');
}

/** The example fleet's defaults, hardware and profiles, plus SITES generated store files. */
function generateFleet(dir: string): void {
  const cat = join(dir, 'catalogue');
  cpSync(join(root, 'catalogue'), cat, { recursive: true });
  cpSync(join(root, 'overlays'), join(dir, 'overlays'), { recursive: true });
  rmSync(join(cat, 'sites'), { recursive: true, force: true });
  mkdirSync(join(cat, 'sites'));
  for (let i = 0; i < SITES; i++) {
    const id = siteId(i);
    const subnet = `10.${100 + (i >> 8)}.${i & 255}.0/24`;
    writeFileSync(
      join(cat, 'sites', `${id}.yaml`),
      [
        'apiVersion: edgeimg.dev/v1alpha1',
        'kind: Site',
        'metadata:',
        `  name: ${id}`,
        `  labels: { country: de, region: eu-central, tier: ${['gold', 'silver', 'bronze'][i % 3]} }`,
        'spec:',
        '  profile: store-ha3',
        `  subnet: ${subnet}`,
        '  nodes:',
        ...[1, 2, 3].map((n) => `    - { name: cp-${n}, mac: "${mac(i, n)}" }`),
        '',
      ].join('\n'),
    );
  }
}

/** Seconds to write a copy of `src`'s directory tree (same names and sizes) with sync calls. */
function fileFloorSeconds(dst: string, src: string): number {
  const entries = readdirSync(src, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => join(e.parentPath, e.name));
  const sizes = files.map((f) => statSync(f).size);
  const t = performance.now();
  mkdirSync(dst);
  for (const d of dirs) mkdirSync(join(dst, relative(src, d)));
  files.forEach((f, i) => writeFileSync(join(dst, relative(src, f)), Buffer.alloc(sizes[i]!), { flag: 'wx', mode: 0o600 }));
  return (performance.now() - t) / 1000;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'edgeimg-bench-'));
  try {
    log(`generating ${SITES} sites x 3 nodes in ${work}`);
    generateFleet(work);

    // Cold PKI, measured on its own: RSA-4096 dominates.
    let pkiMs = 0;
    let shared = await generateTalosSecrets();
    for (let i = 0; i < PKI_SAMPLES; i++) {
      const t = performance.now();
      shared = await generateTalosSecrets();
      pkiMs += performance.now() - t;
    }
    const pkiPerSite = pkiMs / PKI_SAMPLES;
    const text = serializeSiteSecrets(shared);
    for (let i = 0; i < SITES; i++) {
      const d = join(work, 'secrets', siteId(i));
      mkdirSync(d, { recursive: true, mode: 0o700 });
      writeFileSync(join(d, 'secrets.yaml'), text, { mode: 0o600 });
      chmodSync(join(d, 'secrets.yaml'), 0o600);
    }

    log('building the whole fleet with `edgeimg build --all` (secrets present)');
    const t0 = performance.now();
    const r = await execa(
      process.execPath,
      ['--import', join(root, 'bench', 'rss-reporter.mjs'), join(root, 'bin', 'edgeimg.js'), 'build', '--all', '--catalogue', join(work, 'catalogue'), '--out', join(work, 'out'), '--secrets', join(work, 'secrets')],
      { reject: false, all: true, env: { EDGEIMG_BENCH_RSS: '1' } },
    );
    const seconds = (performance.now() - t0) / 1000;
    if (r.exitCode !== 0) throw new Error(`build failed:\n${r.all?.slice(-2000)}`);
    const rssKiB = Number(/EDGEIMG_BENCH_MAXRSS=(\d+)/.exec(r.all ?? '')?.[1] ?? NaN);
    const nodes = SITES * 3;

    // The disk's floor for the same tree: as many directories and files of the same sizes,
    // written with plain synchronous calls and no rendering. On a shared virtual disk this
    // varies several-fold between runs, so it is measured in the same run as the build.
    const floorS = fileFloorSeconds(join(work, 'floor'), join(work, 'out'));
    log(`disk floor for the same ${nodes} node directories of files: ${floorS.toFixed(2)} s (build spent ${(seconds - floorS).toFixed(2)} s beyond it)`);

    // Incremental: the same command again (nothing changed), then again after editing one
    // store's file; same fleet, same run as the full build above.
    const buildArgs = [join(root, 'bin', 'edgeimg.js'), 'build', '--all', '--json', '--catalogue', join(work, 'catalogue'), '--out', join(work, 'out'), '--secrets', join(work, 'secrets')];
    const timed = async (): Promise<{ s: number; built: number; unchanged: number }> => {
      const t = performance.now();
      const b = await execa(process.execPath, buildArgs, { reject: false, all: false });
      if (b.exitCode !== 0) throw new Error(`incremental build failed:\n${b.stderr.slice(-2000)}`);
      const j = JSON.parse(b.stdout) as { built: number; unchanged: number };
      return { s: (performance.now() - t) / 1000, built: j.built, unchanged: j.unchanged };
    };
    const noop = await timed();
    const edited = join(work, 'catalogue', 'sites', `${siteId(41)}.yaml`);
    writeFileSync(edited, readFileSync(edited, 'utf8').replace(/tier: \w+/, 'tier: platinum'));
    const one = await timed();
    log(`no-op rebuild: ${noop.s.toFixed(2)} s (${noop.unchanged} unchanged, ${noop.built} built); after editing one store's file: ${one.s.toFixed(2)} s (${one.built} built)`);
    console.log(
      `bench: incremental full_s=${seconds.toFixed(2)} noop_s=${noop.s.toFixed(2)} noop_ratio=${(seconds / noop.s).toFixed(1)} noop_built=${noop.built} one_edit_s=${one.s.toFixed(2)} one_edit_built=${one.built}`,
    );

    // Same seeds, both tools: the first SAMPLE nodes' files from the build output.
    const samples: SeedFiles[] = [];
    for (let i = 0; samples.length < SAMPLE; i++) {
      for (const n of [1, 2, 3]) {
        const d = join(work, 'out', siteId(i), 'nodes', `cp-${n}`);
        samples.push({
          userData: readFileSync(join(d, 'user-data')),
          metaData: readFileSync(join(d, 'meta-data')),
          networkConfig: readFileSync(join(d, 'network-config')),
        });
      }
    }
    const cmp = await compareSeedTools(samples.slice(0, SAMPLE), SAMPLE);
    // like for like: both sides produce a seed.iso file on disk
    const seedMs = cmp.oursIsoWriteMs;
    const cloudMs = cmp.cloudLocaldsMs;
    log(`seed per node: edgeimg ${cmp.oursIsoWriteMs.toFixed(3)} ms (in memory ${cmp.oursIsoMs.toFixed(3)} ms, FAT ${cmp.oursImgMs.toFixed(3)} ms); cloud-localds ${cmp.cloudLocaldsMs?.toFixed(1) ?? 'NA'} ms; xorriso ${cmp.xorrisoMs?.toFixed(1) ?? 'NA'} ms; genisoimage ${cmp.genisoimageMs?.toFixed(1) ?? 'NA'} ms`);
    const speedup = cloudMs !== undefined ? cloudMs / seedMs : NaN;
    console.log(
      `bench: nodes=${nodes} seconds=${seconds.toFixed(2)} nodes_per_s=${(nodes / seconds).toFixed(0)} seed_ms=${seedMs.toFixed(3)} cloud_localds_ms=${cloudMs?.toFixed(2) ?? 'NA'} speedup=${Number.isFinite(speedup) ? speedup.toFixed(0) : 'NA'} peak_rss_mib=${(rssKiB / 1024).toFixed(0)} pki_ms_per_site=${pkiPerSite.toFixed(0)}`,
    );
    rmSync(join(work, 'out'), { recursive: true, force: true });
    rmSync(join(work, 'floor'), { recursive: true, force: true });
    // the field kit: sticks and field sheets of a slice of the same fleet
    await sticksBench({ root, work, sites: Array.from({ length: Math.min(SITES, Number(process.env.BENCH_STICK_SITES ?? 100)) }, (_, i) => siteId(i)) });
    // edgeimg serve against nginx, 50 concurrent clients, in the same run
    await serveBench(); // prints its own bench: line
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
