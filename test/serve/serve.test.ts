// `edgeimg serve` over real HTTP on 127.0.0.1 (port 0): sites built by the CLI into a temp OUT,
// made-up netboot assets pinned in a catalogue copy's images.lock. What a node gets (scripts,
// netboot files with byte ranges, its config once), what nobody gets (other paths, another
// node's config, a changed file), what is logged (names and sha256, never the config) and the
// summary at the end.

import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { ServeEvent, RequestEvent } from '../../src/serve/events.js';
import { loadServePlan, type ServePlan } from '../../src/serve/plan.js';
import { startServer, type ServeOptions } from '../../src/serve/server.js';
import { buildServeFixture, TALOS_CMDLINE, type ServeFixture } from './fixture.js';

const SITES = ['store-0412', 'plant-0031', 'store-0007'];
const CP1 = '52-54-00-04-12-11';
const CP2 = '52-54-00-04-12-12';
const CP3 = '52-54-00-04-12-13';
const SERVER1 = 'a0-36-9f-31-00-11';
const AGENT1 = 'a0-36-9f-31-00-21';
const STORE7 = '00-e0-4c-00-07-11';
const SQUASHFS_BYTES = 200 * 1024 * 1024;

let f: ServeFixture;
let plan: ServePlan;
const work = mkdtempSync(join(tmpdir(), 'edgeimg-serve-'));

beforeAll(async () => {
  // store-0007's class gets no netboot assets: its node must be told so, never a 500
  f = await buildServeFixture({ sites: SITES, withAssets: ['store-0412', 'plant-0031'], bytes: { rootfs: SQUASHFS_BYTES }, sparse: ['rootfs'] });
  plan = await loadServePlan({ outDir: f.out, sites: SITES, catalogueDir: f.catalogue, cacheDir: f.cache });
}, 180_000);
afterAll(() => {
  f?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request with the target sent exactly as given (no URL normalisation by a client library). */
function request(url: string, target: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const u = new URL(url);
  return new Promise((ok, fail) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path: target, method: o.method ?? 'GET', headers: o.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

async function serve(extra: Partial<ServeOptions> = {}) {
  const events: ServeEvent[] = [];
  const s = await startServer({ outDir: f.out, sites: SITES, catalogueDir: f.catalogue, cacheDir: f.cache, plan, listen: '127.0.0.1:0', onEvent: (e) => events.push(e), ...extra });
  return { s, events, url: s.url };
}

const requests = (events: ServeEvent[]): RequestEvent[] => events.filter((e): e is RequestEvent => 'status' in e);
const userData = (site: string, node: string): Buffer => readFileSync(join(f.out, site, 'nodes', node, 'user-data'));
const manifestSha = (site: string, node: string): string =>
  (JSON.parse(readFileSync(join(f.out, site, 'manifest.json'), 'utf8')) as { artifacts: Array<{ kind: string; node: string; sha256: string }> }).artifacts.find((a) => a.kind === 'user-data' && a.node === node)!.sha256;
const fileOf = (mac: string, role: 'kernel' | 'initrd' | 'squashfs'): string => {
  const nb = plan.byMac.get(mac)!.netboot!;
  return (role === 'kernel' ? nb.kernel : role === 'initrd' ? nb.initrd : nb.rootfs!).file;
};

describe('iPXE scripts', () => {
  it('boot.ipxe chains to the per-MAC script at the address the client used', async () => {
    const { s, url } = await serve();
    try {
      const named = await request(url, '/boot.ipxe', { headers: { Host: 'laptop.store-0412.example:8080' } });
      expect(named.status).toBe(200);
      expect(named.headers['cache-control']).toBe('no-store');
      const text = named.body.toString();
      expect(text.startsWith('#!ipxe\n')).toBe(true);
      expect(text).toContain('\nchain http://laptop.store-0412.example:8080/ipxe/${mac:hexhyp}\n');
      // a Host header that is no host[:port] is not used: the socket's address is
      const odd = await request(url, '/boot.ipxe', { headers: { Host: 'x"${y};shell' } });
      expect(odd.body.toString()).toContain(`\nchain ${url}/ipxe/\${mac:hexhyp}\n`);
      expect(odd.body.toString()).not.toContain('shell');
    } finally {
      await s.close();
    }
  });

  it('a Talos node gets its kernel, initrd and the pinned cmdline on metal with its talos.config URL', async () => {
    const { s, url, events } = await serve();
    try {
      const r = await request(url, `/ipxe/${CP1}`);
      expect(r.status).toBe(200);
      const lines = r.body.toString().split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('echo '));
      const args = TALOS_CMDLINE.trim().replace('talos.platform=nocloud', 'talos.platform=metal');
      expect(lines).toEqual([`kernel ${url}/nb/${CP1}/kernel initrd=initrd ${args} talos.config=${url}/config/${CP1}`, `initrd ${url}/nb/${CP1}/initrd`, 'boot']);
      expect(r.body.toString()).not.toContain('nocloud');
      // the colon form, in upper case, is the same node
      const colon = await request(url, `/ipxe/${CP1.toUpperCase().replace(/-/g, ':')}`);
      expect(colon.body.toString()).toBe(r.body.toString());
      expect(requests(events)[0]).toMatchObject({ event: 'node-script', site: 'store-0412', node: 'cp-1', mac: '52:54:00:04:12:11', status: 200 });
    } finally {
      await s.close();
    }
  });

  it('a Kairos node gets the live root filesystem and config_url as the Kairos netboot docs have them', async () => {
    const { s, url } = await serve();
    try {
      const text = (await request(url, `/ipxe/${SERVER1}`)).body.toString();
      expect(text).toContain(
        `\nkernel ${url}/nb/${SERVER1}/kernel initrd=initrd rd.neednet=1 ip=dhcp rd.cos.disable root=live:${url}/nb/${SERVER1}/squashfs netboot install-mode config_url=${url}/config/${SERVER1} console=tty1 console=ttyS0\n`,
      );
      expect(text).toContain(`\ninitrd ${url}/nb/${SERVER1}/initrd\nboot\n`);
    } finally {
      await s.close();
    }
  });

  it('an unknown MAC is told it is not in the catalogue and gets no kernel and no config', async () => {
    const { s, url, events } = await serve();
    try {
      const r = await request(url, '/ipxe/de-ad-be-ef-00-01');
      expect(r.status).toBe(200);
      const text = r.body.toString();
      expect(text).toContain('echo edgeimg: MAC de:ad:be:ef:00:01 is not in the catalogue of store-0412, plant-0031, store-0007: not booting\n');
      expect(text.trimEnd().endsWith('exit 1')).toBe(true);
      expect(text).not.toMatch(/^kernel|^initrd|\/config\/|\/nb\//m);
      expect((await request(url, '/config/de-ad-be-ef-00-01')).status).toBe(404);
      expect((await request(url, '/nb/de-ad-be-ef-00-01/kernel')).status).toBe(404);
      expect(requests(events)[0]).toMatchObject({ event: 'unknown-mac', mac: 'de:ad:be:ef:00:01', status: 200 });
      expect((await s.close()).unknownMacs).toEqual(['de:ad:be:ef:00:01']);
    } finally {
      await s.close();
    }
  });

  it('a node whose netboot files are not in the cache is told why and how to fix it, never a 500', async () => {
    expect(plan.warnings.join('\n')).toMatch(/store-0007\/cp-1: cannot boot over the network: class legacy-amd64 \(talos v1\.13\.9\): .*kernel-amd64: boot image asset not in the cache/);
    const { s, url } = await serve();
    try {
      const r = await request(url, `/ipxe/${STORE7}`);
      expect(r.status).toBe(200);
      const text = r.body.toString();
      expect(text).toContain('netboot file kernel-amd64 of class legacy-amd64 (talos v1.13.9) is not in the image cache: not booting');
      expect(text).toContain('edgeimg images pull --class legacy-amd64 --only netboot');
      expect(text).not.toMatch(/^kernel /m);
      // a node that cannot boot from here has no config route either
      expect((await request(url, `/config/${STORE7}`)).status).toBe(404);
    } finally {
      await s.close();
    }
  });
});

describe('configs', () => {
  it('a node config is served once, byte for byte with its manifest sha256, then 410 until re-armed', async () => {
    const { s, url, events } = await serve();
    try {
      const head = await request(url, `/config/${CP1}`, { method: 'HEAD' });
      expect(head.status).toBe(200); // HEAD spends nothing
      expect(Number(head.headers['content-length'])).toBe(userData('store-0412', 'cp-1').byteLength);
      const first = await request(url, `/config/${CP1}`);
      expect(first.status).toBe(200);
      expect(first.headers['cache-control']).toBe('no-store');
      expect(first.body.equals(userData('store-0412', 'cp-1'))).toBe(true);
      expect(createHash('sha256').update(first.body).digest('hex')).toBe(manifestSha('store-0412', 'cp-1'));
      const again = await request(url, `/config/${CP1}`);
      expect(again.status).toBe(410);
      expect(again.body.toString()).toBe('gone: this config was served already\n');
      // booting again now hands back to the firmware (the installed disk) instead of reinstalling
      const script = (await request(url, `/ipxe/${CP1}`)).body.toString();
      expect(script).toContain('its config was served already: not booting');
      expect(script).not.toMatch(/^kernel /m);
      // another node's config is untouched
      expect((await request(url, `/config/${CP2}`)).status).toBe(200);
      expect(s.serveAgain('52:54:00:04:12:11')).toEqual(['52:54:00:04:12:11']);
      expect((await request(url, `/config/${CP1}`)).status).toBe(200);
      expect(requests(events).filter((e) => e.event === 'config-refused')).toHaveLength(1);
      const summary = await s.close();
      const store = summary.sites.find((x) => x.site === 'store-0412')!;
      expect(store.nodes.map((n) => [n.node, n.fetched, n.fetches])).toEqual([
        ['cp-1', true, 2],
        ['cp-2', true, 1],
        ['cp-3', false, 0],
      ]);
      expect(store.nodes[0]).toMatchObject({ mac: '52:54:00:04:12:11', sha256: manifestSha('store-0412', 'cp-1'), remote: '127.0.0.1' });
    } finally {
      await s.close();
    }
  });

  it('of several requests at once for one config, exactly one gets it', async () => {
    const { s, url } = await serve();
    try {
      const replies = await Promise.all(Array.from({ length: 8 }, () => request(url, `/config/${CP3}`)));
      expect(replies.map((r) => r.status).sort()).toEqual([200, 410, 410, 410, 410, 410, 410, 410]);
    } finally {
      await s.close();
    }
  });

  it('after the serving window every config request gets 410 and boot scripts stop', async () => {
    const { s, url, events } = await serve({ windowMs: 400 });
    try {
      await new Promise((ok) => s.events.once('expired', ok));
      const r = await request(url, `/config/${AGENT1}`);
      expect(r.status).toBe(410);
      expect(r.body.toString()).toBe('gone: the serving window is over\n');
      expect((await request(url, `/ipxe/${AGENT1}`)).body.toString()).toContain('the serving window is over: not booting');
      expect(events.some((e) => e.event === 'window-closed')).toBe(true);
      const summary = await s.close();
      expect(summary.reason).toBe('window');
      expect(summary.fetched).toBe(0);
    } finally {
      await s.close();
    }
  });

  it('with oncePerMac off (serve --serve-again) a config is served on every request', async () => {
    const { s, url } = await serve({ oncePerMac: false });
    try {
      expect((await request(url, `/config/${AGENT1}`)).status).toBe(200);
      expect((await request(url, `/config/${AGENT1}`)).status).toBe(200);
      const agent = (await s.close()).sites.find((x) => x.site === 'plant-0031')!.nodes.find((n) => n.node === 'agent-1')!;
      expect(agent).toMatchObject({ fetched: true, fetches: 2 });
    } finally {
      await s.close();
    }
  });

  it('a config changed since the build is refused (503) and not spent', async () => {
    const out = join(work, 'changed-out');
    cpSync(join(f.out, 'store-0412'), join(out, 'store-0412'), { recursive: true });
    const events: ServeEvent[] = [];
    const s = await startServer({ outDir: out, sites: ['store-0412'], catalogueDir: f.catalogue, cacheDir: f.cache, listen: '127.0.0.1:0', onEvent: (e) => events.push(e) });
    try {
      const file = join(out, 'store-0412', 'nodes', 'cp-2', 'user-data');
      const good = readFileSync(file);
      writeFileSync(file, Buffer.concat([good.subarray(0, 100), Buffer.from('X'), good.subarray(101)]));
      const r = await request(s.url, `/config/${CP2}`);
      expect(r.status).toBe(503);
      expect(r.body.toString()).toBe('config unavailable\n');
      expect(requests(events).at(-1)).toMatchObject({ event: 'config-refused', status: 503, node: 'cp-2' });
      expect(requests(events).at(-1)!.message).toMatch(/does not match its sha256 in the manifest/);
      writeFileSync(file, good);
      expect((await request(s.url, `/config/${CP2}`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('routes', () => {
  it('traversal, other spellings, absolute-form and encoded paths match nothing (404) and spend nothing', async () => {
    const { s, url, events } = await serve();
    try {
      const targets = [
        '/config/../manifest.json',
        '/config/..%2fmanifest.json',
        `/nb/${CP1}/../../secrets`,
        `/nb/${CP1}/%2e%2e/%2e%2e/manifest.json`,
        '/%2e%2e/%2e%2e/etc/passwd',
        '/config/%2e%2e',
        `//config/${CP2}`,
        `/config//${CP2}`,
        `/nb/${CP1}/kernel/`,
        `/nb/${CP1}/kernel%2f`,
        `/nb/${CP1}%2fkernel`,
        `/nb/${CP1}/./kernel`,
        `/nb/${CP1}/squashfs`, // a Talos node has no root filesystem
        `/nb/${CP1}/vmlinuz`,
        `/nb/${CP1}/`,
        '/nb/',
        `/config/${CP2}/`,
        `/config/${CP2.replace(/-/g, ':')}`,
        `/config/${AGENT1.toUpperCase()}`,
        `/config/${CP2.replace(/-/g, '')}`,
        `/config/${CP2}.yaml`,
        `/config/${CP2}?x=1`,
        `/config/${CP2}%00`,
        `/config/%35%32-54-00-04-12-12`,
        `/CONFIG/${CP2}`,
        `${url}/config/${CP2}`,
        `/ipxe/../config/${CP2}`,
        '/ipxe/',
        '/ipxe/52-54-00-04-12',
        '/boot.ipxe/',
        '/boot.ipxe?x',
        '/',
        '/manifest.json',
        '/store-0412/manifest.json',
        '/secrets',
        '/<script>alert(1)</script>',
      ];
      for (const t of targets) {
        const r = await request(url, t);
        expect(r.status, t).toBe(404);
        expect(r.body.toString(), t).toBe('not found\n');
      }
      expect(requests(events).every((e) => e.event === 'not-found' && !/[<>"\s]/.test(e.path))).toBe(true);
      expect((await request(url, `/config/${CP2}`)).status).toBe(200); // nothing above spent it
    } finally {
      await s.close();
    }
  });

  it('methods other than GET and HEAD get 405', async () => {
    const { s, url } = await serve();
    try {
      for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
        const r = await request(url, `/config/${CP1}`, { method });
        expect(r.status, method).toBe(405);
        expect(r.headers.allow).toBe('GET, HEAD');
      }
      expect((await request(url, `/config/${CP1}`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('netboot files', () => {
  it('Range requests give exactly the bytes asked; unsatisfiable and malformed ones get 416', async () => {
    const { s, url } = await serve();
    const bytes = readFileSync(fileOf(CP1, 'kernel'));
    const size = bytes.byteLength;
    const path = `/nb/${CP1}/kernel`;
    try {
      const whole = await request(url, path);
      expect(whole.status).toBe(200);
      expect(whole.headers['accept-ranges']).toBe('bytes');
      expect(whole.body.equals(bytes)).toBe(true);
      const cases: Array<[string, number, number]> = [
        ['bytes=0-0', 0, 0],
        ['bytes=0-1023', 0, 1023],
        [`bytes=${size - 10}-`, size - 10, size - 1],
        ['bytes=-17', size - 17, size - 1],
        [`bytes=1000-${size + 5000}`, 1000, size - 1],
      ];
      for (const [range, start, end] of cases) {
        const r = await request(url, path, { headers: { Range: range } });
        expect(r.status, range).toBe(206);
        expect(r.headers['content-range'], range).toBe(`bytes ${start}-${end}/${size}`);
        expect(Number(r.headers['content-length']), range).toBe(end - start + 1);
        expect(r.body.equals(bytes.subarray(start, end + 1)), range).toBe(true);
      }
      for (const range of [`bytes=${size}-`, 'bytes=9-3', 'bytes=-0', 'bytes=x-y']) {
        const r = await request(url, path, { headers: { Range: range } });
        expect(r.status, range).toBe(416);
        expect(r.headers['content-range'], range).toBe(`bytes */${size}`);
      }
      const head = await request(url, path, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(Number(head.headers['content-length'])).toBe(size);
      expect(head.body.byteLength).toBe(0);
      const initrd = await request(url, `/nb/${CP1}/initrd`, { method: 'HEAD' });
      expect(Number(initrd.headers['content-length'])).toBe(readFileSync(fileOf(CP1, 'initrd')).byteLength);
    } finally {
      await s.close();
    }
  });

  it('a file changed since it was verified at start is refused with 503', async () => {
    const copy = join(work, 'kernel-copy');
    copyFileSync(fileOf(CP1, 'kernel'), copy);
    const node = plan.byMac.get(CP1)!;
    const { statSync } = await import('node:fs');
    const st = statSync(copy);
    const changed: ServePlan = {
      ...plan,
      byMac: new Map([[CP1, { ...node, netboot: { ...node.netboot!, kernel: { ...node.netboot!.kernel, file: copy, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev } } }]]),
    };
    const { s, url, events } = await serve({ plan: changed });
    try {
      expect((await request(url, `/nb/${CP1}/kernel`, { method: 'HEAD' })).status).toBe(200);
      appendFileSync(copy, 'x');
      const r = await request(url, `/nb/${CP1}/kernel`);
      expect(r.status).toBe(503);
      expect(requests(events).at(-1)).toMatchObject({ event: 'asset-changed', status: 503, node: 'cp-1' });
    } finally {
      await s.close();
    }
  });

  it('a 200 MiB file is streamed with bounded memory', async () => {
    const { s, url, events } = await serve();
    try {
      const before = process.memoryUsage().rss;
      let peak = before;
      const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const u = new URL(url);
      const received = await new Promise<number>((ok, fail) => {
        httpRequest({ host: u.hostname, port: u.port, path: `/nb/${SERVER1}/squashfs`, agent: false }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.byteLength));
          res.on('end', () => ok(n));
          res.on('error', fail);
        })
          .on('error', fail)
          .end();
      });
      clearInterval(sample);
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(received).toBe(SQUASHFS_BYTES);
      expect(peak - before).toBeLessThan(64 * 1024 * 1024);
      // the event follows the last byte
      for (let i = 0; i < 100 && !requests(events).some((e) => e.event === 'asset'); i++) await new Promise((ok) => setTimeout(ok, 20));
      expect(requests(events).at(-1)).toMatchObject({ event: 'asset', status: 200, bytes: SQUASHFS_BYTES, complete: true, remote: '127.0.0.1' });
    } finally {
      await s.close();
    }
  });
});

describe('closing', () => {
  it('stops accepting at once and cuts a download still in flight after the grace period', async () => {
    const { s, url } = await serve({ closeGraceMs: 500 });
    const u = new URL(url);
    let res: import('node:http').IncomingMessage | undefined;
    let received = 0;
    const started = new Promise<void>((ok) => {
      const req = httpRequest({ host: u.hostname, port: u.port, path: `/nb/${SERVER1}/squashfs`, agent: false }, (r) => {
        res = r;
        r.pause(); // a node that stopped reading
        ok();
      });
      req.on('error', () => {});
      req.end();
    });
    await started;
    await new Promise((ok) => setTimeout(ok, 200));
    const t0 = Date.now();
    const summary = await s.close();
    expect(Date.now() - t0).toBeLessThan(2500);
    // reading on, the client finds the download cut short
    const ended = await new Promise<string>((ok) => {
      res!.on('data', (c: Buffer) => (received += c.byteLength));
      res!.on('end', () => ok('end'));
      res!.on('error', () => ok('error'));
      res!.on('aborted', () => ok('aborted'));
      res!.resume();
    });
    expect(ended).not.toBe('end');
    expect(received).toBeLessThan(SQUASHFS_BYTES);
    expect(summary.reason).toBe('closed');
    await expect(request(url, '/boot.ipxe')).rejects.toThrow(/ECONNREFUSED/);
  });
});

/** A run of the CLI whose --events stream is watched: `onListening` gets the server's URL. */
async function runCli(args: string[], onListening?: (url: string) => Promise<void>): Promise<{ code: number; out: string; err: string; work?: Promise<void> }> {
  let out = '';
  let err = '';
  let work: Promise<void> | undefined;
  // the listening event (on the --events stream) says where the server is
  const argv = onListening && !args.includes('--events') ? [...args, '--events'] : args;
  const code = await main(['serve', ...argv], {
    out: (s) => {
      out += s;
      for (const line of s.split('\n')) {
        if (!line.startsWith('{"time"')) continue;
        const e = JSON.parse(line) as ServeEvent;
        if (e.event === 'listening' && onListening) work = onListening((e as { url: string }).url);
      }
    },
    err: (s) => (err += s),
  });
  await work;
  return { code, out, err };
}

describe('the serve command', () => {
  it('serves for --for, logs names and sha256 but never the config, and ends with its summary', async () => {
    const fetched: Buffer[] = [];
    const r = await runCli(
      ['--site', 'store-0412', '--site', 'plant-0031', '--out', f.out, '--catalogue', f.catalogue, '--cache', f.cache, '--listen', '127.0.0.1:0', '--for', '3s', '--events', '--json'],
      async (url) => {
        fetched.push((await request(url, `/config/${CP1}`)).body);
        await request(url, `/nb/${CP1}/kernel`, { headers: { Range: 'bytes=0-99' } });
        await request(url, '/ipxe/de-ad-be-ef-00-02');
      },
    );
    expect(r.code, r.err).toBe(0);
    expect(fetched[0]!.equals(userData('store-0412', 'cp-1'))).toBe(true);
    // the key material of the config appears in no log line and no event
    const secret = /^\s*key: (\S{80,})/m.exec(userData('store-0412', 'cp-1').toString())![1]!.slice(20, 80);
    expect(fetched[0]!.toString()).toContain(secret);
    expect(r.out).not.toContain(secret);
    expect(r.err).not.toContain(secret);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const config = lines.find((e) => e.event === 'config')!;
    expect(config).toMatchObject({ status: 200, site: 'store-0412', node: 'cp-1', artifact: 'nodes/cp-1/user-data', sha256: manifestSha('store-0412', 'cp-1'), bytes: fetched[0]!.byteLength });
    expect(lines.find((e) => e.event === 'asset')).toMatchObject({ status: 206, bytes: 100, sha256: plan.byMac.get(CP1)!.netboot!.kernel.sha256 });
    const summary = lines.at(-1)!;
    expect(summary).toMatchObject({ event: 'summary', ok: true, reason: 'window', fetched: 1, notFetched: 5, unknownMacs: ['de:ad:be:ef:00:02'] });
    expect(r.err).toContain('listening on http://127.0.0.1:');
    expect(r.err).toContain('only this machine can reach it');
    expect(r.err).toMatch(/store-0412: 1 of 3 nodes fetched their config/);
    expect(r.err).toMatch(new RegExp(`cp-1 +52:54:00:04:12:11 +fetched .* sha256 ${manifestSha('store-0412', 'cp-1')}`));
    expect(r.err).toMatch(/cp-2 +52:54:00:04:12:12 +NOT fetched/);
    expect(r.err).toMatch(/plant-0031: 0 of 3 nodes fetched their config/);
  });

  it('Ctrl-C stops with the summary (exit 0); SIGUSR2 re-arms the configs served', async () => {
    const statuses: number[] = [];
    const r = await runCli(['--site', 'store-0412', '--out', f.out, '--catalogue', f.catalogue, '--cache', f.cache, '--listen', '127.0.0.1:0', '--json'], async (url) => {
      statuses.push((await request(url, `/config/${CP2}`)).status);
      statuses.push((await request(url, `/config/${CP2}`)).status);
      process.emit('SIGUSR2');
      statuses.push((await request(url, `/config/${CP2}`)).status);
      process.emit('SIGINT');
    });
    expect(r.code, r.err).toBe(0);
    expect(statuses).toEqual([200, 410, 200]);
    const summary = JSON.parse(r.out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(summary).toMatchObject({ event: 'summary', reason: 'closed', fetched: 1, notFetched: 2 });
    expect(r.err).toMatch(/cp-2 +52:54:00:04:12:12 +fetched .*\(2 times\)/);
    expect(process.listenerCount('SIGUSR2')).toBe(0);
    expect(process.listenerCount('SIGHUP')).toBe(0);
  });

  it('--require-all exits 1 when a node did not fetch its config', async () => {
    const r = await runCli(['--site', 'store-0412', '--out', f.out, '--catalogue', f.catalogue, '--cache', f.cache, '--listen', '127.0.0.1:0', '--for', '1s', '--require-all']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('--require-all: 3 nodes did not fetch their config');
  });

  it('an address in use is an environment problem (exit 3) naming it', async () => {
    const blocker = createServer();
    await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', ok));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await runCli(['--site', 'store-0412', '--out', f.out, '--catalogue', f.catalogue, '--cache', f.cache, '--listen', `127.0.0.1:${port}`]);
      expect(r.code).toBe(3);
      expect(r.err).toContain(`cannot listen on 127.0.0.1:${port}: the address is already in use`);
      expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      blocker.close();
    }
  });

  it('a site that is not built is an environment problem (exit 3) naming the path and the build command', async () => {
    const r = await runCli(['--site', 'lab-0001', '--out', f.out, '--catalogue', f.catalogue, '--cache', f.cache, '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`${join(f.out, 'lab-0001', 'manifest.json')}: site lab-0001 is not built; build it first: edgeimg build --site lab-0001 --out ${f.out}`);
  });

  it('usage errors: no site, both --site and --all, a bare --for number, a --listen without port', async () => {
    const base = ['--out', f.out, '--catalogue', f.catalogue, '--cache', f.cache];
    expect((await runCli(base)).code).toBe(2);
    expect((await runCli([...base, '--all', '--site', 'store-0412'])).code).toBe(2);
    expect((await runCli([...base, '--site', 'store-0412', '--for', '10'])).code).toBe(2);
    expect((await runCli([...base, '--site', 'store-0412', '--listen', '8080'])).code).toBe(2);
  });

  it('a node without a MAC is warned about at start and cannot be served', async () => {
    const out = join(work, 'no-mac-out');
    cpSync(join(f.out, 'store-0412'), join(out, 'store-0412'), { recursive: true });
    const file = join(out, 'store-0412', 'manifest.json');
    const m = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Array<{ name: string; mac?: string }> };
    delete m.nodes.find((n) => n.name === 'cp-3')!.mac;
    writeFileSync(file, JSON.stringify(m, null, 2));
    const p = await loadServePlan({ outDir: out, sites: ['store-0412'], catalogueDir: f.catalogue, cacheDir: f.cache });
    expect(p.warnings).toEqual([expect.stringMatching(/^store-0412\/cp-3: cannot be served: the catalogue gives it no MAC/)]);
    expect([...p.byMac.keys()]).toEqual([CP1, CP2]);
  });
});

describe('serve --dnsmasq-conf', () => {
  it('writes the proxyDHCP + TFTP config for the interface of the --listen address, pointing iPXE at this server', async () => {
    const { networkInterfaces } = await import('node:os');
    const lan = Object.entries(networkInterfaces()).flatMap(([iface, as]) => (as ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => ({ iface, address: a.address })))[0];
    if (!lan) {
      if (process.env.CI === 'true') throw new Error('no non-loopback IPv4 interface to test --dnsmasq-conf with');
      console.warn('\n*** SKIPPING the --dnsmasq-conf test: this machine has no non-loopback IPv4 address ***\n');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'edgeimg-dnsmasq-conf-'));
    try {
      const file = join(dir, 'proxy.conf');
      const r = await runCli(['--site', 'store-0412', '--out', f.out, '--catalogue', f.catalogue, '--cache', f.cache, '--listen', `${lan.address}:0`, '--for', '1s', '--dnsmasq-conf', file]);
      expect(r.code, r.err).toBe(0);
      const port = /listening on http:\/\/[0-9.]+:(\d+)/.exec(r.err)?.[1];
      const conf = readFileSync(file, 'utf8');
      expect(conf).toContain(`interface=${lan.iface}\n`);
      expect(conf).toContain(`dhcp-boot=tag:ipxe,http://${lan.address}:${port}/boot.ipxe,,${lan.address}\n`);
      expect(conf).toMatch(/^pxe-service=tag:!ipxe,x86-64_EFI,"edgeimg iPXE UEFI",ipxe\.efi$/m);
      expect(r.err).toContain(`dnsmasq --conf-file=${file} --no-daemon`);
      // loopback is refused: nodes could not reach it
      const lo = await runCli(['--site', 'store-0412', '--out', f.out, '--catalogue', f.catalogue, '--cache', f.cache, '--listen', '127.0.0.1:0', '--dnsmasq-conf', file]);
      expect(lo.code).toBe(2);
      expect(lo.err).toMatch(/--dnsmasq-conf needs --listen on the laptop's address/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
