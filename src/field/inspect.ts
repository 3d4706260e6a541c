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

export interface InspectOptions {
  /** Where built sites are (default ./out): the manifest to compare with. */
  outDir: string;
  /** The stick must be this site's / node's (e.g. the one a technician is about to provision). */
  expectSite?: string;
  expectNode?: string;
}

export interface InspectResult {
  ok: boolean;
  path: string;
  kind: 'seed-img' | 'seed-iso' | 'unknown';
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
