// Host-side tests of the probe init's network configuration mode (images/probe/init sourced in
// library mode), run with the busybox of the amd64 probe initramfs: which command-line URL is
// fetched (talos.config / config_url), host:port of the server, the hostname found in a Talos or
// Kairos configuration, the fetch itself (busybox wget against a local HTTP server: HTTP errors,
// timeouts, refused connections) and the udhcpc event script (with a stand-in `ip`). The guest
// side -- NIC modules, DHCP from slirp, the transcript -- is covered by bench/netboot-check.ts.

import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CI, REPO_ROOT, bootPrereqs, ensureProbeImages, missingTools } from '../boot/helpers.js';

const INIT = join(REPO_ROOT, 'images/probe/init');

const pre = arch() === 'x64' ? bootPrereqs(['amd64'], 'probe init network-mode host tests') : { run: false };
const tools = missingTools(['cpio']);
if (!IN_CI && tools.length) console.warn(`*** SKIPPING probe init network-mode host tests: missing ${tools.join(', ')} ***`);

describe.skipIf(!pre.run || (!IN_CI && tools.length > 0))('probe init: network configuration mode', () => {
  let dir: string;
  let bin: string;
  let server: Server;
  let base: string;
  const hung: Array<() => void> = [];

  beforeAll(async () => {
    const probe = ensureProbeImages(['amd64']).amd64;
    dir = mkdtempSync(join(tmpdir(), 'edgeimg-netinit-'));
    bin = join(dir, 'bin');
    mkdirSync(bin);
    const bb = execFileSync('sh', ['-c', 'gzip -dc "$1" | cpio -i --quiet --to-stdout bin/busybox', 'sh', probe.initrd], {
      maxBuffer: 64 * 1024 * 1024,
    });
    writeFileSync(join(bin, 'busybox'), bb, { mode: 0o755 });
    execFileSync(join(bin, 'busybox'), ['--install', '-s', bin]);
    // never let a test reach the host's network configuration, power switch or /etc
    for (const cmd of ['ip', 'udhcpc', 'insmod', 'poweroff', 'reboot', 'halt']) {
      rmSync(join(bin, cmd), { force: true });
      writeFileSync(join(bin, cmd), `#!${join(bin, 'sh')}\necho "${cmd} $*" >>"$TMPDIR/calls"\n`, { mode: 0o755 });
    }

    server = createServer((req, res) => {
      switch (req.url) {
        case '/config/ok':
          res.writeHead(200, { 'content-type': 'application/yaml' });
          res.end('#cloud-config\nhostname: n1\n');
          return;
        case '/config/gone':
          res.writeHead(410);
          res.end('already served\n');
          return;
        case '/config/redirect':
          res.writeHead(302, { location: '/config/ok' });
          res.end();
          return;
        case '/config/hang':
          hung.push(() => res.destroy());
          return; // never answers
        default:
          res.writeHead(404);
          res.end('not found\n');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 20 * 60_000);

  afterAll(async () => {
    for (const h of hung) h();
    if (server) await new Promise<void>((r) => server.close(() => r()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a snippet with the init's functions defined (asynchronously: the HTTP server must keep answering). */
  function sh(script: string, env: Record<string, string> = {}, ...args: string[]): Promise<{ status: number; out: string }> {
    return new Promise((resolve) => {
      execFile(join(bin, 'sh'), ['-c', `EDGEIMG_PROBE_LIB=1 . "${INIT}"; ${script}`, 'probe', ...args], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { PATH: bin, TMPDIR: dir, LC_ALL: 'C', ...env },
      }, (err, stdout) => {
        const code = err ? ((err as { code?: unknown }).code ?? 1) : 0;
        resolve({ status: typeof code === 'number' ? code : 1, out: stdout.replace(/\n$/, '') });
      });
    });
  }

  it('url_hostport: host and port of an http:// URL (80 by default)', async () => {
    const cases: Array<[string, string | null]> = [
      ['http://10.0.2.2:8080/config/52-54-00-ed-9e-01', '10.0.2.2:8080'],
      ['http://boot.example.net/config/x', 'boot.example.net:80'],
      ['http://10.0.2.2', '10.0.2.2:80'],
      ['http://10.0.2.2:/x', '10.0.2.2:80'],
      ['http://user:pw@10.0.2.2:81/x?y=1', '10.0.2.2:81'],
      ['http://[fd00::1]:9000/x', '[fd00::1]:9000'],
      ['http://[fd00::1]/x', '[fd00::1]:80'],
      ['http://10.0.2.2:99999/x', null],
      ['http://10.0.2.2:x/', null],
      ['http:///config', null],
      ['https://10.0.2.2/config', null],
      ['metal-iso', null],
      ['', null],
    ];
    for (const [url, want] of cases) {
      const r = await sh('url_hostport "$1"', {}, url);
      expect(r.status === 0 ? r.out : null, url).toBe(want);
    }
  });

  it('net_select: Talos reads talos.config, Kairos config_url; only http:// URLs start a fetch', async () => {
    const sel = async (standin: string, talos: string, kairos: string): Promise<string> => {
      const r = await sh('standin=$1 talos_config=$2 config_url=$3; net_select && echo "$NETPARAM $NETURL"', {}, standin, talos, kairos);
      return r.status === 0 ? r.out : '-';
    };
    expect(await sel('talos', 'http://h/config/a', '')).toBe('talos.config http://h/config/a');
    expect(await sel('talos', '', 'http://h/config/a')).toBe('-');
    expect(await sel('talos', 'metal-iso', '')).toBe('-'); // Talos's ISO seed, not a network fetch
    expect(await sel('kairos', '', 'http://h/config/b')).toBe('config_url http://h/config/b');
    expect(await sel('kairos', 'http://h/config/a', '')).toBe('-');
    expect(await sel('', 'http://h/t', 'http://h/k')).toBe('talos.config http://h/t');
    expect(await sel('', 'metal-iso', 'http://h/k')).toBe('config_url http://h/k');
    expect(await sel('', '', '')).toBe('-');
    expect(await sel('', 'https://h/t', '')).toBe('-');
  });

  it('config_hostname: Kairos top-level hostname, Talos machine.network.hostname or HostnameConfig', async () => {
    const host = async (text: string): Promise<string> => {
      const f = join(dir, 'cfg');
      writeFileSync(f, text);
      return (await sh('config_hostname "$1"', {}, f)).out;
    };
    expect(await host('#cloud-config\nhostname: kairos-{{ trunc 4 .MachineID }}\nusers:\n  - name: kairos\n')).toBe('kairos-{{ trunc 4 .MachineID }}');
    expect(await host('#cloud-config\r\nhostname: "edge-1" # quoted\r\n')).toBe('edge-1');
    expect(await host("#cloud-config\nhostname: 'edge-2'\n")).toBe('edge-2');
    expect(await host([
      'version: v1alpha1', 'machine:', '  type: controlplane', '  network:', '    interfaces:', '      - interface: eth0',
      '        hostname: not-this', '    hostname: cp-1  # comment', 'cluster:', '  hostname: nor-this', '',
    ].join('\n'))).toBe('cp-1');
    expect(await host('version: v1alpha1\nmachine:\n  network: {}\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp-2\n')).toBe('cp-2');
    // not a hostname: nested elsewhere, inside a block scalar, in a list, empty
    expect(await host('#cloud-config\nstages:\n  boot:\n    - hostname: nested\n')).toBe('');
    expect(await host('#cloud-config\nwrite_files:\n  - content: |\n      hostname: in-a-file\n')).toBe('');
    expect(await host('- hostname: x\n')).toBe('');
    expect(await host('machine:\n  hostname: x\nnetwork:\n  hostname: y\n')).toBe('');
    expect(await host('#cloud-config\nhostname:\n')).toBe('');
    expect(await host('')).toBe('');
  });

  it('net_fetch: the configuration, or why not (HTTP status, timeout, refused connection)', async () => {
    const fetch = (path: string, wait = '5'): Promise<{ status: number; out: string }> =>
      sh('wait_s=$2; if why=$(net_fetch "$1" "$TMPDIR/config"); then cat "$TMPDIR/config"; else echo "FAIL $why"; [ -e "$TMPDIR/config" ] && echo leftover; fi', {}, `${base}${path}`, wait);
    expect((await fetch('/config/ok')).out).toBe('#cloud-config\nhostname: n1');
    expect((await fetch('/config/redirect')).out).toBe('#cloud-config\nhostname: n1');
    expect((await fetch('/config/gone')).out).toBe('FAIL http-410');
    expect((await fetch('/config/missing')).out).toBe('FAIL http-404');
    const t0 = Date.now();
    expect((await fetch('/config/hang', '1')).out).toBe('FAIL timeout-1s');
    expect(Date.now() - t0).toBeLessThan(10_000);
    const refused = await sh('wait_s=5; net_fetch "$1" "$TMPDIR/config"', {}, 'http://127.0.0.1:1/config/x');
    expect(refused.status).toBe(1);
    expect(refused.out).toMatch(/can't connect to remote host.*refused/i);
  });

  it('the udhcpc event script sets address, default route and resolver, and records the lease', async () => {
    const etc = join(dir, 'etc');
    mkdirSync(etc, { recursive: true });
    rmSync(join(dir, 'calls'), { force: true });
    const r = await sh(
      'write_dhcp_script && interface=eth0 ip=10.0.2.15 mask=24 router="10.0.2.2 10.0.2.9" dns=10.0.2.3 "$TMPDIR/udhcpc.sh" bound && cat "$TMPDIR/lease"',
      { EDGEIMG_PROBE_ETC: etc },
    );
    expect(r).toEqual({ status: 0, out: '10.0.2.15/24' });
    expect(readFileSync(join(dir, 'calls'), 'utf8').split('\n').filter(Boolean)).toEqual([
      'ip -4 addr flush dev eth0',
      'ip -4 addr add 10.0.2.15/24 dev eth0',
      'ip -4 route add default via 10.0.2.2 dev eth0',
    ]);
    expect(readFileSync(join(etc, 'resolv.conf'), 'utf8')).toBe('nameserver 10.0.2.3\n');
    rmSync(join(dir, 'calls'), { force: true });
    const d = await sh('write_dhcp_script && interface=eth0 "$TMPDIR/udhcpc.sh" deconfig', { EDGEIMG_PROBE_ETC: etc });
    expect(d.status).toBe(0);
    expect(readFileSync(join(dir, 'calls'), 'utf8')).toBe('ip -4 addr flush dev eth0\nip link set eth0 up\n');
  });

  it('net_iface: the first ethernet interface, never loopback', async () => {
    const sys = join(dir, 'sys');
    const net = (name: string, type: string): void => {
      mkdirSync(join(sys, 'class/net', name), { recursive: true });
      writeFileSync(join(sys, 'class/net', name, 'type'), `${type}\n`);
    };
    net('lo', '772');
    net('sit0', '776');
    net('eth1', '1');
    net('eth0', '1');
    expect(await sh('net_iface', { EDGEIMG_PROBE_SYSFS: sys })).toEqual({ status: 0, out: 'eth0' });
    rmSync(join(sys, 'class/net/eth0'), { recursive: true });
    rmSync(join(sys, 'class/net/eth1'), { recursive: true });
    // a symlink as in real sysfs
    mkdirSync(join(sys, 'devices/virtual/net/ens3'), { recursive: true });
    writeFileSync(join(sys, 'devices/virtual/net/ens3/type'), '1\n');
    symlinkSync(join(sys, 'devices/virtual/net/ens3'), join(sys, 'class/net/ens3'));
    expect(await sh('net_iface', { EDGEIMG_PROBE_SYSFS: sys })).toEqual({ status: 0, out: 'ens3' });
    rmSync(join(sys, 'class/net/ens3'));
    // no NIC: gives up after its 5 s wait
    expect((await sh('net_iface', { EDGEIMG_PROBE_SYSFS: sys })).status).toBe(1);
  }, 30_000);

  it('NIC modules come in a list of their own, loaded only in network mode', () => {
    const img = ensureProbeImages(['amd64']).amd64;
    const list = (name: string): string[] =>
      execFileSync('sh', ['-c', 'gzip -dc "$1" | cpio -i --quiet --to-stdout "$2"', 'sh', img.initrd, name], { encoding: 'utf8' })
        .split('\n').filter(Boolean).map((l) => l.split(' ')[0]!.replace(/^.*\//, ''));
    const media = list('etc/probe-modules');
    const netm = list('etc/probe-net-modules');
    expect(netm).toEqual(expect.arrayContaining(['virtio_net.ko', 'net_failover.ko', 'failover.ko', 'e1000.ko']));
    expect(netm.indexOf('failover.ko')).toBeLessThan(netm.indexOf('net_failover.ko'));
    expect(netm.indexOf('net_failover.ko')).toBeLessThan(netm.indexOf('virtio_net.ko'));
    expect(media.filter((m) => netm.includes(m))).toEqual([]);
    expect(media).toContain('virtio_pci.ko'); // shared with virtio_net, loaded with the media modules
  });
});
