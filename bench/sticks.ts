// Field-kit benchmark, run by bench/fleet.ts after the fleet build in the same run: what a
// site's sticks and field sheet cost per node beyond the seed ISO, against copying a class boot
// image per site (what a tool without a shared class image would do). Prints one `bench:` line.

import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { renderFieldSheet } from '../src/field/sheet.js';

const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

/** A stand-in class image of `mib` MiB (random bytes: no filesystem can shortcut the copy). */
async function fakeClassImage(dir: string, mib: number): Promise<string> {
  const tree = join(dir, 'tree');
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, 'EDGEIMG-STANDIN.json'), JSON.stringify({ standin: 'talos-like', arch: 'amd64', version: 1, note: 'bench' }));
  writeFileSync(join(tree, 'payload.bin'), randomBytes(mib * 1024 * 1024));
  const iso = join(dir, 'talos-like.iso');
  await execa('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-V', 'EDGEIMG_TALOS_LIKE', '-o', iso, tree]);
  return iso;
}

export async function sticksBench(o: { root: string; work: string; sites: string[] }): Promise<void> {
  const dir = join(o.work, 'sticks');
  mkdirSync(join(dir, 'standin', 'amd64'), { recursive: true });
  const iso = await fakeClassImage(dir, 100);
  copyFileSync(iso, join(dir, 'standin', 'amd64', 'talos-like.iso'));
  const cli = join(o.root, 'bin', 'edgeimg.js');
  const cat = join(o.work, 'catalogue');
  const cache = join(dir, 'cache');
  await execa(process.execPath, [cli, 'images', 'standin', '--from', join(dir, 'standin'), '--cache', cache, '--catalogue', cat]);
  const siteArgs = o.sites.flatMap((s) => ['--site', s]);
  const build = async (out: string, media: string): Promise<number> => {
    const t = performance.now();
    await execa(process.execPath, [cli, 'build', ...siteArgs, '--catalogue', cat, '--out', out, '--secrets', join(o.work, 'secrets'), '--media', media, '--cache', cache, '--allow-standin']);
    return performance.now() - t;
  };
  // alternate, twice each, and keep the faster run of each: the disk is shared and noisy
  const isoMs: number[] = [];
  const kitMs: number[] = [];
  for (let i = 0; i < 2; i++) {
    isoMs.push(await build(join(dir, `out-iso-${i}`), 'iso'));
    kitMs.push(await build(join(dir, `out-kit-${i}`), 'iso,img'));
  }
  const nodes = o.sites.length * 3;
  const perNode = (Math.min(...kitMs) - Math.min(...isoMs)) / nodes;
  const out = join(dir, 'out-kit-0');
  const classFiles = readdirSync(join(out, '_boot'), { recursive: true }).filter((f) => String(f).endsWith('.iso')).length;
  const perSiteLarge = o.sites.filter((s) => readdirSync(join(out, s), { recursive: true }).some((f) => statSync(join(out, s, String(f))).size > 40 * 1024 * 1024)).length;
  // field sheet alone, in process: a 3-node site
  const t = performance.now();
  const N = 200;
  for (let i = 0; i < N; i++) {
    renderFieldSheet({
      site: `store-${i}`, os: 'talos', osVersion: 'v1.13.9', inputDigest: `sha256:${'0'.repeat(64)}`, labels: { tier: 'gold' },
      nodes: [1, 2, 3].map((n) => ({ name: `cp-${n}`, role: 'controlplane' as const, hostname: `h${n}`, address: `10.0.0.${n}`, mac: '52:54:00:00:00:01', hardwareClass: 'nuc12-amd64', arch: 'amd64', firmware: 'uefi' as const, classStick: { name: 'x', sha256: 'a'.repeat(64) }, seedStick: { path: `nodes/cp-${n}/seed.img`, sha256: 'b'.repeat(64) } })),
    });
  }
  const sheetMs = (performance.now() - t) / N;
  // what copying the class image per site would cost instead of one shared link
  const copies = Math.min(5, o.sites.length);
  const c0 = performance.now();
  for (let i = 0; i < copies; i++) copyFileSync(iso, join(dir, `copy-${i}.iso`));
  const copyMs = (performance.now() - c0) / copies;
  for (let i = 0; i < copies; i++) rmSync(join(dir, `copy-${i}.iso`));
  log(`sticks: ${o.sites.length} sites: build --media iso ${Math.min(...isoMs).toFixed(0)} ms, --media iso,img (+ class sticks linked) ${Math.min(...kitMs).toFixed(0)} ms; a 100 MiB class image copy ${copyMs.toFixed(0)} ms`);
  console.log(
    `bench: sticks sites=${o.sites.length} nodes=${nodes} stick_ms_per_node=${perNode.toFixed(2)} field_sheet_ms_per_site=${sheetMs.toFixed(2)} class_images_in_out=${classFiles} sites_with_class_image_copy=${perSiteLarge} class_copy_ms_per_site=${copyMs.toFixed(0)} copy_vs_stick_per_site=${(copyMs / (perNode * 3)).toFixed(0)}`,
  );
}
