// A built site for the publish/pull tests (store-0412 with seed ISOs and 33 MiB seed sticks),
// the CLI run in-process, and a file tree as {path: sha256} for byte-for-byte comparisons.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync, lstatSync } from 'node:fs';
import { join, relative } from 'node:path';
import { main } from '../../src/cli/main.js';
import { serializeManifest, type Manifest } from '../../src/manifest/manifest.js';
import { parsePrivateKey, signSshsig, SSHSIG_NAMESPACE_MANIFEST } from '../../src/trust/sshsig.js';
import { sha256sums } from '../../src/trust/sums.js';
import { repoRoot } from '../helpers/catalogue.js';

export const SITE = 'store-0412';
export const CATALOGUE = join(repoRoot, 'catalogue');

export interface Run {
  code: number;
  out: string;
  err: string;
}

/** `edgeimg ARGS` in this process, with `env` set for the call only. */
export async function run(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  let out = '';
  let err = '';
  try {
    const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Builds store-0412 into WORK/out with its secrets in WORK/secrets. */
export async function buildSite(work: string, media = 'iso,img'): Promise<{ out: string; secrets: string; dir: string }> {
  const out = join(work, 'out');
  const secrets = join(work, 'secrets');
  const r = await run(['build', '--site', SITE, '--catalogue', CATALOGUE, '--out', out, '--secrets', secrets, '--media', media]);
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.err}`);
  return { out, secrets, dir: join(out, SITE) };
}

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Every regular file below `dir` as {relative path: sha256}, minus `ignore`d names. */
export function tree(dir: string, ignore: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const rel = relative(dir, p);
    if (ignore.includes(rel)) continue;
    out[rel] = sha(p);
  }
  return out;
}

/** Every entry below `dir` (files, directories, hidden ones) with its size: "nothing changed" means equal listings. */
export function listing(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true })
      .map((p) => {
        const st = lstatSync(join(dir, String(p)));
        return `${String(p)} ${st.isDirectory() ? 'dir' : st.size}`;
      })
      .sort();
  } catch {
    return ['<absent>'];
  }
}

/**
 * Adds a `bytes`-long random non-secret artifact to a built site, listed in its manifest,
 * re-signed with the fleet key and with SHA256SUMS rewritten: an intact site with a big file.
 */
export function addBigArtifact(siteDir: string, secretsDir: string, path: string, bytes: number, opts: { sparse?: boolean } = {}): void {
  const fd = openSync(join(siteDir, path), 'wx', 0o644);
  const hash = createHash('sha256');
  if (opts.sparse) {
    // zeros without writing them: cheap to make, as big as a one-stick
    ftruncateSync(fd, bytes);
    const zeros = Buffer.alloc(4 * 1024 * 1024);
    for (let left = bytes; left > 0; left -= zeros.length) hash.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
  } else {
    for (let left = bytes; left > 0; ) {
      const piece = randomBytes(Math.min(left, 4 * 1024 * 1024));
      writeSync(fd, piece);
      hash.update(piece);
      left -= piece.length;
    }
  }
  closeSync(fd);
  const manifest = JSON.parse(readFileSync(join(siteDir, 'manifest.json'), 'utf8')) as Manifest;
  manifest.artifacts.push({ path, kind: 'seed-img', node: 'cp-1', sha256: hash.digest('hex'), bytes, secret: false });
  const text = serializeManifest(manifest);
  writeFileSync(join(siteDir, 'manifest.json'), text);
  writeFileSync(join(siteDir, 'SHA256SUMS'), sha256sums(manifest.artifacts, text));
  const key = parsePrivateKey(readFileSync(join(secretsDir, '_signing', 'id_ed25519'), 'utf8'));
  writeFileSync(join(siteDir, 'manifest.json.sig'), signSshsig(key, SSHSIG_NAMESPACE_MANIFEST, Buffer.from(text, 'utf8')));
}
