// `edgeimg inspect PATH`: what a stick (or its image file) is, and whether it is intact. A
// seed stick names its site and node twice over: meta-data's instance-id
// (iid-<site>.<node>.<hash>) and EDGEIMG.TXT. The volume's bytes are then compared with the
// seed the site's manifest lists, so a stick for another node, or one changed byte, shows.

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { readManifest, type Manifest } from '../manifest/manifest.js';
import { readFatImage } from '../media/fat/reader.js';
import { readIso9660 } from '../media/iso9660/reader.js';
import { parseStickInfo, STICK_INFO_NAME } from '../media/stick-info.js';
import { describeTarget, readHead } from './device.js';
import { peekIso, readIsoRootFile, type IsoPeek } from '../media/iso9660/peek.js';
import { bootMediumPath } from '../manifest/manifest.js';
import { readdirSync, openSync, readSync, closeSync, constants } from 'node:fs';
import { checkManifestSignature } from '../trust/manifest-sig.js';
import { anchorPlaces, resolveTrustAnchor } from '../trust/signing-key.js';

export interface InspectOptions {
  /** Where built sites are (default ./out): the manifest to compare with. */
  outDir: string;
  /** The stick must be this site's / node's (e.g. the one a technician is about to provision). */
  expectSite?: string;
  expectNode?: string;
  /**
   * Where the fleet's public key is (CATALOGUE/signing.pub, else SECRETS/_signing/id_ed25519.pub):
   * the manifest compared with must be signed by it. Neither given: the signature is not checked.
   */
  catalogueDir?: string;
  secretsDir?: string;
}

/** Notes "signed by the fleet key", or a problem, for the manifest of `site` in OUT. */
async function checkSignature(opts: InspectOptions, site: string, res: InspectResult): Promise<void> {
  if (opts.catalogueDir === undefined && opts.secretsDir === undefined) return;
  const where = { ...(opts.catalogueDir !== undefined ? { catalogueDir: opts.catalogueDir } : {}), ...(opts.secretsDir !== undefined ? { secretsDir: opts.secretsDir } : {}) };
  let r;
  try {
    r = await checkManifestSignature(join(opts.outDir, site), await resolveTrustAnchor(where), anchorPlaces(where));
  } catch (err) {
    r = { ok: false, message: `cannot check the signature of ${site}'s manifest: ${(err as Error).message}` };
  }
  if (r.ok) res.notes.push(`${site}: ${r.message}`);
  else res.problems.push(`${site}: ${r.message}`);
}

export interface InspectResult {
  ok: boolean;
  path: string;
  kind: 'seed-img' | 'seed-iso' | 'class-boot' | 'kairos-stick' | 'unknown';
  /** Class boot media: the hardware class, OS version and file it is. */
  bootMedium?: { hardwareClass: string; os: string; version: string; name: string; standin?: string; sites: string[] };
  site?: string;
  node?: string;
  hostname?: string;
  mac?: string;
  os?: string;
  build?: string;
  /** sha256 of the volume (the bytes the image file had). */
  sha256?: string;
  bytes?: number;
  problems: string[];
  notes: string[];
}

/** Largest volume inspect reads (a seed is 33 MiB; class boot media are not seeds). */
const MAX_VOLUME = 1 << 30;

const u16 = (b: Buffer, o: number): number => b.readUInt16LE(o);
const u32 = (b: Buffer, o: number): number => b.readUInt32LE(o);

/** The volume's declared size, from the FAT boot sector or the ISO primary volume descriptor. */
function volumeOf(head: Buffer): { kind: 'seed-img' | 'seed-iso'; bytes: number } | undefined {
  if (head.length >= 32768 + 2048 && head.toString('latin1', 32769, 32774) === 'CD001') {
    return { kind: 'seed-iso', bytes: u32(head, 32768 + 80) * u16(head, 32768 + 128) };
  }
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) {
    const bps = u16(head, 11);
    const total = u16(head, 19) || u32(head, 32);
    if ([512, 1024, 2048, 4096].includes(bps) && total > 0) return { kind: 'seed-img', bytes: total * bps };
  }
  return undefined;
}

export async function inspectStick(path: string, opts: InspectOptions): Promise<InspectResult> {
  const target = describeTarget(path);
  const res: InspectResult = { ok: false, path, kind: 'unknown', problems: [], notes: [] };
  const head = readHead(path, 32768 + 2048);
  const vol = volumeOf(head);
  if (!vol) {
    res.problems.push('not an edgeimg seed: no FAT or ISO9660 volume at the start');
    return res;
  }
  res.kind = vol.kind;
  if (vol.kind === 'seed-iso') {
    const peek = peekIso(path);
    if (peek && peek.volumeId.trim().toLowerCase() !== 'cidata') return inspectIsoMedium(path, peek, opts, res, target.size);
  }
  if (vol.bytes > MAX_VOLUME) {
    res.problems.push(`the volume claims ${vol.bytes} bytes, more than a seed can be`);
    return res;
  }
  const data = readHead(path, vol.bytes);
  if (data.length < vol.bytes) {
    res.problems.push(`truncated: the volume needs ${vol.bytes} bytes, ${target.kind === 'block' ? 'the device' : 'the file'} holds ${data.length}`);
    return res;
  }
  res.bytes = vol.bytes;
  res.sha256 = createHash('sha256').update(data).digest('hex');
  let files: Array<{ name: string; data: Uint8Array }>;
  let label: string;
  try {
    if (vol.kind === 'seed-iso') {
      const r = readIso9660(data);
      files = r.files;
      label = r.volumeId;
    } else {
      const r = readFatImage(data);
      files = r.files;
      label = r.label;
      if (r.fatType !== 32) res.problems.push(`FAT${r.fatType}: Kairos (go-diskfs 1.7) only finds FAT32 seeds`);
    }
  } catch (err) {
    res.problems.push(`the volume is damaged: ${(err as Error).message}`);
    return res;
  }
  if (label.trim().toLowerCase() !== 'cidata') res.problems.push(`volume label is ${JSON.stringify(label)}, not cidata/CIDATA: no NoCloud reader will find it`);
  const text = (name: string): string | undefined => {
    const f = files.find((x) => x.name === name);
    return f ? Buffer.from(f.data).toString('utf8') : undefined;
  };
  const iid = /^instance-id: (\S+)$/m.exec(text('meta-data') ?? '')?.[1];
  const ids = iid ? /^iid-([a-z0-9-]+)\.([a-z0-9-]+)\.[0-9a-f]+$/.exec(iid) : null;
  const info = text(STICK_INFO_NAME);
  const parsed = info ? parseStickInfo(info) : {};
  res.site = ids?.[1] ?? parsed.site;
  res.node = ids?.[2] ?? parsed.node;
  res.hostname = /^local-hostname: (\S+)$/m.exec(text('meta-data') ?? '')?.[1] ?? parsed.hostname;
  res.mac = parsed.mac;
  res.os = parsed.os;
  res.build = parsed.build;
  if (!res.site || !res.node) {
    res.problems.push('no edgeimg identity on the volume (meta-data instance-id or EDGEIMG.TXT): not a seed edgeimg wrote');
    return res;
  }
  if (info && parsed.site && (parsed.site !== res.site || parsed.node !== res.node)) {
    res.problems.push(`EDGEIMG.TXT says ${parsed.site}/${parsed.node} but meta-data says ${res.site}/${res.node}`);
  }
  if (opts.expectSite && opts.expectSite !== res.site) res.problems.push(`this stick is for site ${res.site}, not ${opts.expectSite}`);
  if (opts.expectNode && opts.expectNode !== res.node) res.problems.push(`this stick is for node ${res.site}/${res.node} (${res.hostname ?? '?'}), not ${opts.expectNode}`);

  let manifest: Manifest;
  try {
    manifest = await readManifest(join(opts.outDir, res.site));
  } catch {
    res.problems.push(`cannot compare: no manifest for ${res.site} in ${opts.outDir} (build the site, or give --out)`);
    return finish(res);
  }
  await checkSignature(opts, res.site, res);
  const art = manifest.artifacts.find((a) => a.node === res.node && a.kind === vol.kind);
  if (!art) {
    res.problems.push(`the manifest of ${res.site} lists no ${vol.kind} for node ${res.node}`);
    return finish(res);
  }
  if (art.sha256 === res.sha256 && art.bytes === res.bytes) {
    res.notes.push(`matches ${join(opts.outDir, res.site, art.path)} (sha256 ${res.sha256})`);
  } else {
    // say which file differs, when the volume still reads
    const differing = manifest.artifacts
      .filter((a) => a.node === res.node && ['user-data', 'meta-data', 'network-config'].includes(a.kind))
      .filter((a) => {
        const f = files.find((x) => x.name === a.kind);
        return !f || createHash('sha256').update(f.data).digest('hex') !== a.sha256;
      })
      .map((a) => a.kind);
    res.problems.push(
      `does NOT match the site's manifest: sha256 ${res.sha256}, expected ${art.sha256}` +
        (differing.length > 0 ? ` (${differing.join(', ')} differ${differing.length === 1 ? 's' : ''})` : ' (the files read the same: the volume itself was changed or is from another build)'),
    );
  }
  return finish(res);
}

function finish(res: InspectResult): InspectResult {
  res.ok = res.problems.length === 0;
  return res;
}

/** sha256 of the first `bytes` bytes of a file or device, or null when it holds fewer. */
function hashPrefix(path: string, bytes: number): string | null {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const h = createHash('sha256');
    const buf = Buffer.alloc(4 << 20);
    let off = 0;
    while (off < bytes) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - off), off);
      if (n === 0) return null;
      h.update(buf.subarray(0, n));
      off += n;
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** Every built site's manifest in OUT (or just the expected site's). */
async function manifestsIn(outDir: string, only?: string): Promise<Manifest[]> {
  let names: string[];
  try {
    names = only ? [only] : readdirSync(outDir).filter((n) => /^[a-z0-9]/.test(n));
  } catch {
    return [];
  }
  const out: Manifest[] = [];
  for (const n of names) {
    try {
      out.push(await readManifest(join(outDir, n)));
    } catch {
      // not a site directory
    }
  }
  return out;
}

/**
 * An ISO9660 medium that is no seed: a Kairos one-stick ISO (config.yaml + EDGEIMG.TXT at its
 * root, matched against its node's manifest entry) or a class boot stick (matched by sha256
 * against the class boot media the built sites' manifests pin).
 */
async function inspectIsoMedium(path: string, peek: IsoPeek, opts: InspectOptions, res: InspectResult, deviceBytes: number): Promise<InspectResult> {
  const info = readIsoRootFile(path, STICK_INFO_NAME);
  if (info && peek.rootFiles.has('CONFIG.YAML')) {
    res.kind = 'kairos-stick';
    const parsed = parseStickInfo(info.toString('utf8'));
    Object.assign(res, { site: parsed.site, node: parsed.node, hostname: parsed.hostname, mac: parsed.mac, os: parsed.os, build: parsed.build });
    if (!res.site || !res.node) {
      res.problems.push('EDGEIMG.TXT names no site and node: not a stick edgeimg wrote');
      return finish(res);
    }
    if (opts.expectSite && opts.expectSite !== res.site) res.problems.push(`this stick is for site ${res.site}, not ${opts.expectSite}`);
    if (opts.expectNode && opts.expectNode !== res.node) res.problems.push(`this stick is for node ${res.site}/${res.node} (${res.hostname ?? '?'}), not ${opts.expectNode}`);
    const [m] = await manifestsIn(opts.outDir, res.site);
    const art = m?.artifacts.find((a) => a.node === res.node && a.kind === 'kairos-stick');
    if (!art) {
      res.problems.push(`cannot compare: no kairos-stick of ${res.site}/${res.node} in a manifest in ${opts.outDir}`);
      return finish(res);
    }
    await checkSignature(opts, res.site, res);
    const sha = hashPrefix(path, art.bytes);
    res.bytes = art.bytes;
    if (sha === null) res.problems.push(`truncated: the stick image is ${art.bytes} bytes, ${deviceBytes > 0 ? `the medium holds ${deviceBytes}` : 'the medium holds fewer'}`);
    else if (sha !== art.sha256) res.problems.push(`does NOT match the site's manifest: sha256 ${sha}, expected ${art.sha256}`);
    else res.notes.push(`matches ${join(opts.outDir, res.site, art.path)} (sha256 ${sha})`);
    if (sha) res.sha256 = sha;
    return finish(res);
  }
  res.kind = 'class-boot';
  const manifests = await manifestsIn(opts.outDir, opts.expectSite);
  // candidates: the class boot media the sites pin, grouped by size (one hash pass per size)
  const bySize = new Map<number, Array<{ m: Manifest; b: NonNullable<Manifest['bootMedia']>[number] }>>();
  for (const m of manifests) for (const b of m.bootMedia ?? []) if (b.sha256 && b.bytes !== undefined) bySize.set(b.bytes, [...(bySize.get(b.bytes) ?? []), { m, b }]);
  let truncated: number | undefined;
  for (const [bytes, cands] of bySize) {
    const sha = hashPrefix(path, bytes);
    if (sha === null) {
      truncated = bytes;
      continue;
    }
    const hit = cands.filter((c) => c.b.sha256 === sha);
    if (hit.length === 0) continue;
    const b = hit[0]!.b;
    res.sha256 = sha;
    res.bytes = bytes;
    res.os = `${b.os} ${b.version}`;
    res.bootMedium = { hardwareClass: b.hardwareClass, os: b.os, version: b.version, name: b.name, ...(b.standin ? { standin: b.standin } : {}), sites: [...new Set(hit.map((c) => c.m.site))].sort() };
    res.notes.push(`the ${b.hardwareClass} boot stick for ${b.os} ${b.version} (${b.name}, sha256 ${sha}; ${bootMediumPath(b)}), used by ${res.bootMedium.sites.length === 1 ? res.bootMedium.sites[0] : `${res.bootMedium.sites.length} sites`}`);
    for (const site of res.bootMedium.sites) await checkSignature(opts, site, res);
    if (b.standin) res.notes.push(`this is a TEST STAND-IN (${b.standin}), not ${b.os}: never take it to a site`);
    if (opts.expectNode) {
      const site = opts.expectSite ? manifests.find((m) => m.site === opts.expectSite) : undefined;
      const node = site?.nodes.find((n) => n.name === opts.expectNode);
      if (site && !node) res.problems.push(`site ${site.site} has no node ${opts.expectNode}`);
      else if (node && node.hardwareClass !== b.hardwareClass) res.problems.push(`node ${opts.expectNode} is ${node.hardwareClass} hardware: it takes the ${node.hardwareClass} boot stick, not this ${b.hardwareClass} one`);
    }
    return finish(res);
  }
  const where = opts.expectSite ? `site ${opts.expectSite}` : `the sites in ${opts.outDir}`;
  res.problems.push(
    truncated !== undefined && deviceBytes > 0 && deviceBytes < truncated
      ? `truncated: ISO9660 volume "${peek.volumeId}" on a medium of ${deviceBytes} bytes, shorter than the class boot sticks of ${where} (${truncated} bytes)`
      : `ISO9660 volume "${peek.volumeId}" (${peek.declaredBytes} bytes) matches no class boot stick of ${where}: another image, a changed byte, or a site not built here`,
  );
  return finish(res);
}
