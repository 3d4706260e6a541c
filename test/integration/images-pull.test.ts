// `edgeimg images pull` against a local stand-in for Image Factory on 127.0.0.1 that behaves as
// siderolabs/image-factory docs/api.md describes: POST /schematics answers 201 {"id": sha256 of
// the schematic}, GET /image/<id>/<version>/<asset> serves only registered schematics (404
// otherwise) and may answer 302 to a CDN. The same server stands in for Kairos release downloads.
// No other network is used.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { main } from '../../src/cli/main.js';
import { readLock, writePins } from '../../src/images/index.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';

const NUC = 'fb79be8885b2ec0c41fb38a6867e28b8e76fd73df9eadbb3bd39adb0a1eb306d'; // nuc12-amd64
const V = 'v1.13.9';
const NUC_ASSETS = ['nocloud-amd64.iso', 'kernel-amd64', 'initramfs-amd64.xz', 'cmdline-nocloud-amd64'];
const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');
const served = (path: string): Buffer => Buffer.from(`bytes of ${path}\n`.repeat(50));

interface Fake {
  url: string;
  requests: string[];
  /** Answer POST /schematics with this ID instead of the schematic's sha256. */
  wrongId?: string;
  /** Serve these bytes for a path instead of served(path). */
  override: Map<string, Buffer>;
  /** Paths whose download sends headers and half the body, then stalls. */
  stall: Set<string>;
  /** Never answer POST /schematics. */
  silent?: boolean;
  close(): Promise<void>;
}

async function startFactory(): Promise<Fake> {
  const registered = new Set<string>();
  const sockets = new Set<import('node:net').Socket>();
  const fake = { requests: [] as string[], override: new Map<string, Buffer>(), stall: new Set<string>() } as unknown as Fake;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    fake.requests.push(`${req.method} ${path}`);
    if (req.method === 'POST' && path === '/schematics') {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        if (fake.silent) return; // the client's timeout must end this
        const id = fake.wrongId ?? sha(Buffer.concat(parts));
        registered.add(id);
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id, schematic: Buffer.concat(parts).toString() }));
      });
      return;
    }
    const image = /^\/image\/([0-9a-f]{64})\/[^/]+\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && image) {
      if (!registered.has(image[1]!)) return void res.writeHead(404).end('schematic not found\n');
      // the factory may redirect a download to object storage
      if (image[2]!.startsWith('initramfs')) return void res.writeHead(302, { location: `/cdn${path}` }).end();
    }
    if (req.method === 'GET' && (image || path.startsWith('/cdn/image/') || path.startsWith('/kairos/'))) {
      const key = path.replace(/^\/cdn/, '');
      const body = fake.override.get(key) ?? served(key);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
      if (fake.stall.has(key)) return void res.write(body.subarray(0, body.length >> 1));
      return void res.end(body);
    }
    res.writeHead(404).end('no route\n');
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return fake;
}

/** A port on 127.0.0.1 nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const work = mkdtempSync(join(tmpdir(), 'edgeimg-pull-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let fake: Fake;
let cat: CatalogueCopy;
let cache: string;
let n = 0;
beforeEach(async () => {
  fake = await startFactory();
  cat = copyCatalogue();
  cache = join(work, `cache-${n++}`);
});
afterEach(async () => {
  await fake.close();
  cat.cleanup();
});

async function pull(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['images', 'pull', '--catalogue', cat.catalogue, '--cache', cache, '--factory', fake.url, '--kairos-releases', `${fake.url}/kairos`, ...args], {
    out: (s) => (out += s),
    err: (s) => (err += s),
  });
  return { code, out, err };
}

const cached = (name: string, id = NUC): string => join(cache, 'talos', V, id, name);
const allCacheFiles = (): string[] => (existsSync(cache) ? readdirSync(cache, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort() : []);

describe('images pull', { timeout: 30_000 }, () => {
  it('registers the class schematic, downloads its assets (following a redirect) and pins them', async () => {
    const r = await pull('--class', 'nuc12-amd64', '--json');
    expect(r.err).toContain(`registering schematic ${NUC}`);
    expect(r.code).toBe(0);
    expect(fake.requests[0]).toBe('POST /schematics');
    expect(fake.requests).toContain(`GET /cdn/image/${NUC}/${V}/initramfs-amd64.xz`);
    const pins = readLock(cat.catalogue).pins;
    for (const name of NUC_ASSETS) {
      const key = `/image/${NUC}/${V}/${name}`;
      expect(readFileSync(cached(name))).toEqual(served(key));
      expect(pins.get(`talos/${V}/${NUC}/${name}`)).toEqual({ sha256: sha(served(key)), size: served(key).length });
    }
    const report = JSON.parse(r.out);
    expect(report.schematics).toEqual([{ classes: ['nuc12-amd64'], id: NUC, url: `${fake.url}/schematics`, status: 'registered' }]);
    expect(report.assets.map((a: { status: string; pinned: string }) => `${a.status}/${a.pinned}`)).toEqual(Array(4).fill('downloaded/new'));

    // a second pull finds everything cached and verified: it only registers
    fake.requests.length = 0;
    const again = await pull('--class', 'nuc12-amd64');
    expect(again.code).toBe(0);
    expect(fake.requests).toEqual(['POST /schematics']);
    expect(again.err).toContain('0 downloaded, 4 already cached');
  });

  it('refuses a download that does not match its pin, names URL and both digests, and leaves nothing of it in the cache', async () => {
    const key = `/image/${NUC}/${V}/nocloud-amd64.iso`;
    const good = served(key);
    const tampered = Buffer.from(good);
    tampered[10] = tampered[10]! ^ 0x01;
    fake.override.set(key, tampered);
    writePins(cat.catalogue, new Map([[`talos/${V}/${NUC}/nocloud-amd64.iso`, { sha256: sha(good), size: good.length }]]));
    const r = await pull('--class', 'nuc12-amd64');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${fake.url}${key}: refused, does not match its pin: expected sha256 ${sha(good)} (${good.length} bytes), got ${sha(tampered)} (${tampered.length} bytes); nothing was cached`);
    expect(existsSync(cached('nocloud-amd64.iso'))).toBe(false);
    expect(allCacheFiles()).toEqual(['cmdline-nocloud-amd64', 'initramfs-amd64.xz', 'kernel-amd64']); // no temporary file either
    expect(readLock(cat.catalogue).pins.get(`talos/${V}/${NUC}/nocloud-amd64.iso`)!.sha256).toBe(sha(good));
  });

  it('refuses a download larger than its pinned size without reading it all', async () => {
    const key = `/image/${NUC}/${V}/kernel-amd64`;
    writePins(cat.catalogue, new Map([[`talos/${V}/${NUC}/kernel-amd64`, { sha256: sha('tiny'), size: 4 }]]));
    const r = await pull('--class', 'nuc12-amd64', '--only', 'netboot');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${fake.url}${key}: refused, the download is larger than its pinned size of 4 bytes`);
    expect(existsSync(cached('kernel-amd64'))).toBe(false);
  });

  it('refuses a class whose schematic ID the factory computes differently, and downloads nothing', async () => {
    fake.wrongId = 'e'.repeat(64);
    const r = await pull('--class', 'nuc12-amd64');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`the factory registered schematic ${'e'.repeat(64)} for nuc12-amd64, but edgeimg computed ${NUC}`);
    expect(fake.requests).toEqual(['POST /schematics']);
    expect(allCacheFiles()).toEqual([]);
    expect(readLock(cat.catalogue).pins.size).toBe(0);
  });

  it('fails with exit 3 naming the URL when the factory cannot be reached', async () => {
    const port = await closedPort();
    const r = await pull('--class', 'nuc12-amd64', '--factory', `http://127.0.0.1:${port}`);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`http://127.0.0.1:${port}/schematics: connection to 127.0.0.1:${port} refused (ECONNREFUSED)`);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('gives up on a factory that does not answer within --timeout (exit 3)', async () => {
    fake.silent = true;
    const started = Date.now();
    const r = await pull('--class', 'nuc12-amd64', '--timeout', '0.5');
    expect(r.code).toBe(3);
    expect(r.err).toContain(`${fake.url}/schematics: no response within 0.5 s`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('gives up on a stalled download (exit 3), keeps the pins of what it already downloaded, and caches nothing partial', async () => {
    fake.stall.add(`/image/${NUC}/${V}/kernel-amd64`);
    const r = await pull('--class', 'nuc12-amd64', '--timeout', '0.5');
    expect(r.code).toBe(3);
    expect(r.err).toContain(`${fake.url}/image/${NUC}/${V}/kernel-amd64: no data within 0.5 s`);
    expect(allCacheFiles()).toEqual(['nocloud-amd64.iso']);
    expect([...readLock(cat.catalogue).pins.keys()]).toEqual([`talos/${V}/${NUC}/nocloud-amd64.iso`]);
  });

  it('names the URL and status of an HTTP error (exit 3)', async () => {
    const r = await pull('--class', 'nuc12-amd64', '--factory', `${fake.url}/nowhere`);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`${fake.url}/nowhere/schematics: HTTP 404 Not Found: no route`);
  });

  it('with --locked downloads nothing that has no pin', async () => {
    const r = await pull('--class', 'nuc12-amd64', '--locked');
    expect(r.code).toBe(1);
    expect(r.err).toContain('not pinned');
    expect(fake.requests).toEqual(['POST /schematics']);
    expect(allCacheFiles()).toEqual([]);
  });

  it('downloads Kairos release assets from the release base URL, and only the boot ISO with --only boot', async () => {
    const stem = 'kairos-ubuntu-24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4+k3s1';
    const r = await pull('--class', 'ipc-amd64', '--only', 'boot');
    expect(r.code).toBe(0);
    expect(fake.requests).toEqual([`GET /kairos/v3.5.1/${stem}.iso`]);
    expect(readFileSync(join(cache, 'kairos', 'v3.5.1', `${stem}.iso`))).toEqual(served(`/kairos/v3.5.1/${stem}.iso`));
  });

  it('skips import-only device images and says where they come from', async () => {
    const r = await pull('--class', 'rpi4-arm64');
    expect(r.code).toBe(0);
    expect(fake.requests).toEqual([]);
    expect(r.err).toContain('no download; import it: quay.io/kairos/ubuntu:24.04-standard-arm64-rpi4-v3.5.1-k0sv1.33.4-k0s.0-img');
  });
});
