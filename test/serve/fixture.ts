// Built sites for `edgeimg serve` tests and its benchmark: a copy of the example catalogue, the
// sites built by the real CLI into a temp OUT, and a temp image cache holding made-up netboot
// assets for the sites' hardware classes, pinned in the copy's images.lock.

import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { planFleet } from '../../src/catalogue/index.js';
import { imageNeeds, type BootAsset } from '../../src/images/assets.js';
import { cachedFile, hashFile, readFileChunks, storeAsset } from '../../src/images/cache.js';
import { writePins, type Pin } from '../../src/images/lock.js';
import { copyCatalogue } from '../helpers/catalogue.js';

/** What `images pull` would fetch as cmdline-nocloud-amd64 for a class with net.ifnames=0. */
export const TALOS_CMDLINE =
  'console=ttyS0 console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512 talos.platform=nocloud net.ifnames=0\n';

export interface ServeFixture {
  root: string;
  catalogue: string;
  out: string;
  secrets: string;
  cache: string;
  sites: string[];
  /** Cache path of each netboot asset stored, by asset path. */
  files: Map<string, string>;
  cleanup(): void;
}

export interface FixtureOptions {
  /** Sites to build. */
  sites: string[];
  /** Sites whose classes get netboot assets (default: all built). */
  withAssets?: string[];
  /** Bytes of each kind of netboot asset; `sparse` kinds are holes of that size (zeros). */
  bytes?: Partial<Record<'kernel' | 'initramfs' | 'rootfs', number>>;
  sparse?: Array<'kernel' | 'initramfs' | 'rootfs'>;
  /** Real files to use as the kernel / initramfs (e.g. the probe image's, to boot in QEMU). */
  files?: Partial<Record<'kernel' | 'initramfs', string>>;
  /** The Talos cmdline asset's content (default TALOS_CMDLINE). */
  cmdline?: string;
}

async function* once(data: Uint8Array): AsyncIterable<Uint8Array> {
  yield data;
}

function sparseFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

async function* chunksOfRandom(size: number): AsyncIterable<Uint8Array> {
  for (let left = size; left > 0; left -= 1 << 20) yield randomBytes(Math.min(left, 1 << 20));
}

export async function buildServeFixture(o: FixtureOptions): Promise<ServeFixture> {
  const cat = copyCatalogue();
  const f: ServeFixture = {
    root: cat.root,
    catalogue: cat.catalogue,
    out: join(cat.root, 'out'),
    secrets: join(cat.root, 'secrets'),
    cache: join(cat.root, 'cache'),
    sites: o.sites,
    files: new Map(),
    cleanup: () => cat.cleanup(),
  };
  let err = '';
  const code = await main(['build', ...o.sites.flatMap((s) => ['--site', s]), '--catalogue', f.catalogue, '--out', f.out, '--secrets', f.secrets, '--cache', f.cache], {
    out: () => {},
    err: (s) => (err += s),
  });
  if (code !== 0) throw new Error(`build failed (${code}): ${err}`);
  const { plans } = await planFleet(f.catalogue);
  const withAssets = o.withAssets ?? o.sites;
  const pins = new Map<string, Pin>();
  for (const need of imageNeeds(plans.filter((p) => withAssets.includes(p.id)))) {
    for (const a of need.assets.filter((x: BootAsset) => x.use === 'netboot')) {
      if (pins.has(a.path)) continue;
      const file = cachedFile(f.cache, a.path);
      f.files.set(a.path, file);
      if (o.sparse?.includes(a.kind as 'kernel')) {
        // a hole of that size: the same bytes as zeros, without writing them
        mkdirSync(dirname(file), { recursive: true });
        sparseFile(file, o.bytes?.[a.kind as 'kernel'] ?? 0);
        const d = await hashFile(file);
        if ('problem' in d) throw new Error(d.problem);
        pins.set(a.path, { sha256: d.sha256, size: d.size });
        continue;
      }
      const size = o.bytes?.[a.kind as 'kernel'] ?? { kernel: 300_001, initramfs: 200_003, rootfs: 100_007 }[a.kind as 'kernel'];
      const real = o.files?.[a.kind as 'kernel'];
      const chunks = a.kind === 'cmdline' ? once(Buffer.from(o.cmdline ?? TALOS_CMDLINE)) : real ? readFileChunks(real) : chunksOfRandom(size);
      const r = await storeAsset(f.cache, a.path, chunks, () => undefined);
      if (!r.stored) throw new Error(r.refused);
      pins.set(a.path, { sha256: r.digest.sha256, size: r.digest.size });
    }
  }
  writePins(f.catalogue, pins);
  return f;
}
