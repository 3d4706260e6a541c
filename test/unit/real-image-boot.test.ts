// realImageBoot end to end for Talos with a fake qemu-system-x86_64 (no real image exists here):
// the fake prints a synthetic console transcript and, for control planes, serves TLS on the
// port QEMU was asked to forward to the guest's apid port, with a certificate from the site's
// OS CA (or a foreign one). Checks the verdicts, the QEMU command line the profile builds, and
// that no fake QEMU process is left behind.

import { generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest, ManifestNode } from '../../src/manifest/manifest.js';
import { realImageBoot } from '../../src/verify/real-image.js';
import { liveQemuGroups } from '../../src/verify/qemu.js';
import { generateTalosSecrets, renderTalosconfig, type TalosSecrets } from '../../src/secrets/index.js';
import { selfSignedCA, SUBJECTS } from '../../src/secrets/generate.js';
import { issueServerCert } from '../helpers/pki.js';

const SCHEMATIC = 'fb79be8885b2ec0c41fb38a6867e28b8e76fd73df9eadbb3bd39adb0a1eb306d';
const dir = mkdtempSync(join(tmpdir(), 'edgeimg-realboot-'));
const siteDir = join(dir, 'out', 'store-0412');
const imagesDir = join(dir, 'repo');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const transcript = (name: string): string[] =>
  readFileSync(new URL(`../fixtures/transcripts/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));


let n = 0;
/**
 * A fake qemu: records its argv, prints `lines` (a few ms apart), optionally serves TLS with
 * `tls` on the forwarded host port, then either exits with `exit` or waits to be killed.
 */
function fakeQemu(o: { lines: string[]; tls?: { cert: string; key: string }; exit?: number }): { bin: string; argvFile: string; marker: string } {
  const marker = `edgeimg-fakeqemu-${process.pid}-${n++}`;
  const js = join(dir, `${marker}.mjs`);
  const argvFile = join(dir, `${marker}.argv.json`);
  writeFileSync(
    js,
    `import { writeFileSync } from 'node:fs';
import { createServer } from 'node:tls';
const argv = process.argv.slice(2);
writeFileSync(${JSON.stringify(argvFile)}, JSON.stringify(argv));
const lines = ${JSON.stringify(o.lines)};
const tls = ${JSON.stringify(o.tls ?? null)};
for (const l of lines) { process.stdout.write(l + '\\n'); await new Promise((r) => setTimeout(r, 5)); }
if (tls) {
  const net = argv[argv.indexOf('-netdev') + 1];
  const port = Number(/hostfwd=tcp:127\\.0\\.0\\.1:(\\d+)-/.exec(net)[1]);
  const srv = createServer({ cert: tls.cert, key: tls.key }, (s) => { s.on('error', () => {}); s.end(); });
  srv.on('tlsClientError', () => {});
  // apid comes up a moment after the config is loaded
  setTimeout(() => srv.listen(port, '127.0.0.1'), 300);
}
${o.exit !== undefined ? `process.exit(${o.exit});` : 'setInterval(() => {}, 1000);'}
`,
  );
  const bin = join(dir, `${marker}.sh`);
  writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" "${js}" "$@" # ${marker}\n`);
  chmodSync(bin, 0o755);
  return { bin, argvFile, marker };
}

function pgrep(marker: string): number[] {
  return spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
}

const nodes: ManifestNode[] = [
  { name: 'cp-1', hostname: 'store-0412-cp-1', role: 'controlplane', arch: 'amd64', firmware: 'uefi', hardwareClass: 'nuc12-amd64', address: '10.4.12.11' },
  { name: 'w-1', hostname: 'store-0412-w-1', role: 'worker', arch: 'amd64', firmware: 'bios', hardwareClass: 'nuc12-amd64', address: '10.4.12.21' },
];
const manifest: Manifest = {
  schemaVersion: 1,
  site: 'store-0412',
  os: 'talos',
  osVersion: 'v1.13.9',
  generator: { name: 'edgeimg', version: '0' },
  inputDigest: 'sha256:0',
  nodes,
  artifacts: nodes.flatMap((nd) => [
    { path: `nodes/${nd.name}/user-data`, kind: 'user-data' as const, node: nd.name, sha256: '', bytes: 0, secret: true },
    { path: `nodes/${nd.name}/network-config`, kind: 'network-config' as const, node: nd.name, sha256: '', bytes: 0, secret: false },
    { path: `nodes/${nd.name}/seed.iso`, kind: 'seed-iso' as const, node: nd.name, sha256: '', bytes: 0, secret: true },
  ]),
};

let secrets: TalosSecrets;
let iso: string;
beforeAll(async () => {
  secrets = await generateTalosSecrets();
  for (const nd of nodes) {
    const d = join(siteDir, 'nodes', nd.name);
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, 'user-data'),
      `version: v1alpha1\nmachine:\n    type: ${nd.role}\n    install:\n        disk: /dev/nvme0n1\n        image: factory.talos.dev/nocloud-installer/${SCHEMATIC}:v1.13.9\n`,
    );
    const octet = nd.address.split('.')[3];
    writeFileSync(
      join(d, 'network-config'),
      `version: 2\nethernets:\n  primary:\n    match:\n      macaddress: '52:54:00:04:12:${octet}'\n    addresses:\n      - ${nd.address}/24\n    routes:\n      - to: 0.0.0.0/0\n        via: '10.4.12.1'\n`,
    );
    writeFileSync(join(d, 'seed.iso'), Buffer.alloc(4096));
  }
  writeFileSync(join(siteDir, 'talosconfig'), renderTalosconfig({ context: 'store-0412', endpoints: ['10.4.12.11'], nodes: [], secrets }));
  iso = join(imagesDir, 'images', 'cache', 'talos', 'v1.13.9', SCHEMATIC, 'nocloud-amd64.iso');
  mkdirSync(join(iso, '..'), { recursive: true });
  writeFileSync(iso, Buffer.alloc(4096));
}, 60_000);

async function boot(nodeName: string, fake: { bin: string }, extra: { timeoutMs?: number } = {}): Promise<{ result: Awaited<ReturnType<typeof realImageBoot>>; log: string[] }> {
  const log: string[] = [];
  const node = nodes.find((x) => x.name === nodeName)!;
  const result = await realImageBoot({
    siteDir,
    manifest,
    node,
    seedPath: join(siteDir, 'nodes', nodeName, 'seed.iso'),
    medium: 'cdrom',
    imagesDir,
    timeoutMs: extra.timeoutMs ?? 20_000,
    exactTimeout: true,
    accel: 'tcg',
    log: (l) => log.push(l),
    qemuBinary: fake.bin,
    killGraceMs: 300,
    apidRetryDelayMs: 100,
    scratchBytes: 64 * 1024 * 1024,
  });
  return { result, log };
}

describe('realImageBoot (Talos, fake QEMU)', () => {
  it('returns null when no real image is cached for the node (the probe image is used)', async () => {
    const r = await realImageBoot({
      siteDir,
      manifest: { ...manifest, osVersion: 'v1.13.8' },
      node: nodes[1]!,
      seedPath: join(siteDir, 'nodes', 'w-1', 'seed.iso'),
      medium: 'cdrom',
      imagesDir,
      timeoutMs: 1000,
      accel: 'tcg',
      log: () => {},
    });
    expect(r).toBeNull();
  });

  it('worker: passes on a config loaded from nocloud, then stops the guest', async () => {
    const fake = fakeQemu({ lines: transcript('talos-pass-nocloud.log') });
    const t0 = Date.now();
    const { result, log } = await boot('w-1', fake);
    expect(result).toMatchObject({ check: 'boot-cdrom', node: 'w-1', ok: true });
    expect(result!.message).toMatch(/^nodes\/w-1\/seed\.iso \(amd64, tcg, [\d.]+ s, real talos image nocloud-amd64\.iso\): Talos loaded its machine config from the nocloud seed/);
    expect(result!.log).toBe(join(siteDir, 'verify', 'w-1-seed-iso-real.log'));
    expect(readFileSync(result!.log!, 'utf8')).toContain('machine config loaded successfully');
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(log.join('\n')).toMatch(/booting nodes\/w-1\/seed\.iso with the real talos image/);
    expect(pgrep(fake.marker)).toEqual([]);
    expect(liveQemuGroups()).toEqual([]);
    // the command line: ISO first in boot order, the seed, a writable NVMe scratch (install.disk
    // /dev/nvme0n1), the seed's MAC and subnet; BIOS class => no firmware override; no forward
    const argv = JSON.parse(readFileSync(fake.argvFile, 'utf8')) as string[];
    const s = argv.join(' ');
    expect(s).toContain(`file=${iso},format=raw,media=cdrom,readonly=on -device ide-cd,drive=m0,bus=ide.0,bootindex=0`);
    expect(s).toMatch(/-device nvme,drive=m2,serial=edgeimg0,bootindex=1/);
    expect(s).toMatch(/talos-install\.raw,format=raw,cache=unsafe/);
    expect(s).toContain('-netdev user,id=n0,net=10.4.12.0/24,host=10.4.12.1,dns=10.4.12.3,dhcpstart=10.4.12.21 -device virtio-net-pci,netdev=n0,mac=52:54:00:04:12:21');
    expect(s).not.toContain('-bios');
    expect(s).not.toContain('-kernel');
  });

  it('control plane: passes only when apid presents a certificate from the site OS CA', async () => {
    const fake = fakeQemu({ lines: transcript('talos-pass-nocloud.log'), tls: issueServerCert({ crt: secrets.certs.os.crt, key: secrets.certs.os.key, subject: SUBJECTS.os }) });
    const { result } = await boot('cp-1', fake);
    expect(result!.message).toMatch(/nocloud seed .*; apid at 127\.0\.0\.1:\d+ presented a certificate .* signed by the site OS CA "O=talos"/);
    expect(result!.ok).toBe(true);
    const s = (JSON.parse(readFileSync(fake.argvFile, 'utf8')) as string[]).join(' ');
    expect(s).toMatch(/hostfwd=tcp:127\.0\.0\.1:\d+-10\.4\.12\.11:50000/);
    expect(pgrep(fake.marker)).toEqual([]);
  });

  it('control plane: fails when apid presents a certificate from a foreign CA', async () => {
    const keys = generateKeyPairSync('ed25519');
    const foreign = selfSignedCA(keys, { O: ['someone-else'] }, new Date(Date.now() - 60_000));
    const fake = fakeQemu({ lines: transcript('talos-pass-nocloud.log'), tls: issueServerCert({ crt: foreign.crt, key: foreign.key, subject: { O: ['someone-else'] } }) });
    const { result } = await boot('cp-1', fake);
    expect(result!.ok).toBe(false);
    expect(result!.message).toMatch(/but apid at .* issued by "O=someone-else", not by the site OS CA/);
    expect(pgrep(fake.marker)).toEqual([]);
  });

  it('control plane: fails when apid never answers within the time left', async () => {
    const fake = fakeQemu({ lines: transcript('talos-pass-nocloud.log') });
    const { result } = await boot('cp-1', fake, { timeoutMs: 2500 });
    expect(result!.ok).toBe(false);
    expect(result!.message).toMatch(/but apid at 127\.0\.0\.1:\d+ presented no certificate/);
    expect(pgrep(fake.marker)).toEqual([]);
  });

  it('fails fast on maintenance mode', async () => {
    const fake = fakeQemu({ lines: transcript('talos-maintenance.log') });
    const t0 = Date.now();
    const { result } = await boot('w-1', fake);
    expect(result!.ok).toBe(false);
    expect(result!.message).toMatch(/maintenance mode/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(pgrep(fake.marker)).toEqual([]);
  });

  it('fails on a timeout, saying how far the seed got', async () => {
    const fake = fakeQemu({ lines: transcript('talos-pending.log') });
    const { result } = await boot('w-1', fake, { timeoutMs: 1500 });
    expect(result!.ok).toBe(false);
    expect(result!.message).toMatch(/no decision within 2 s: Talos read user-data from the seed at \/dev\/sr1/);
    expect(pgrep(fake.marker)).toEqual([]);
  });

  it('fails when the guest exits before loading a config', async () => {
    const fake = fakeQemu({ lines: ['SeaBIOS (version 1.16.2)', 'Booting from DVD/CD...', 'Boot failed: Could not read from CDROM (code 0004)'], exit: 0 });
    const { result } = await boot('w-1', fake);
    expect(result!.ok).toBe(false);
    expect(result!.message).toMatch(/the guest exited \(exit code 0\) before Talos loaded a machine config: .*last console lines: .*Could not read from CDROM/);
  });

  it('a seed that cannot be attached is a failed check, not a crash', async () => {
    const r = await realImageBoot({
      siteDir,
      manifest,
      node: nodes[1]!,
      seedPath: join(siteDir, 'nodes', 'w-1', 'missing-seed.iso'),
      medium: 'usb',
      imagesDir,
      timeoutMs: 1000,
      exactTimeout: true,
      accel: 'tcg',
      log: () => {},
      qemuBinary: fakeQemu({ lines: [] }).bin,
      scratchBytes: 1024 * 1024,
    });
    expect(r).toMatchObject({ check: 'boot-usb', ok: false, message: expect.stringMatching(/cannot boot the real talos image nocloud-amd64\.iso: medium not found/) });
  });

  it('an abort (Ctrl-C) stops the guest and reports the interruption', async () => {
    const fake = fakeQemu({ lines: transcript('talos-pending.log') });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 500);
    const r = await realImageBoot({
      siteDir,
      manifest,
      node: nodes[1]!,
      seedPath: join(siteDir, 'nodes', 'w-1', 'seed.iso'),
      medium: 'cdrom',
      imagesDir,
      timeoutMs: 30_000,
      exactTimeout: true,
      accel: 'tcg',
      signal: ac.signal,
      log: () => {},
      qemuBinary: fake.bin,
      killGraceMs: 300,
      scratchBytes: 1024 * 1024,
    });
    expect(r).toMatchObject({ ok: false, message: expect.stringMatching(/interrupted/) });
    expect(pgrep(fake.marker)).toEqual([]);
  });
});
