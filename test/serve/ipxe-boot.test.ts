// The iPXE scripts against a real iPXE: QEMU's e1000 option ROM (Debian's ipxe-qemu) network
// boots a machine with store-0412 cp-1's MAC from `edgeimg serve` through QEMU's user-mode
// DHCP (bootfile http://10.0.2.2:PORT/boot.ipxe). The netboot "Talos" assets are the probe
// image's kernel and initrd, whose init fetches the talos.config URL of its command line. The
// server's events must show the whole chain: boot.ipxe, the MAC's script, kernel, initrd, and
// the config fetched by the booted kernel.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RequestEvent, ServeEvent } from '../../src/serve/events.js';
import { startServer } from '../../src/serve/server.js';
import { locateProbeImage } from '../../src/verify/probe-image.js';
import { REPO_ROOT } from '../boot/helpers.js';
import { requireTool } from '../helpers/tools.js';
import { buildServeFixture, type ServeFixture } from './fixture.js';

const probe = locateProbeImage(REPO_ROOT, 'amd64');
const bzImage = probe ? join(probe.dir, 'vmlinuz') : undefined;
const rom = ['/usr/share/qemu/pxe-e1000.rom', '/usr/lib/ipxe/qemu/pxe-e1000.rom'].find((p) => existsSync(p));
const ready = requireTool('qemu-system-x86_64') && bzImage !== undefined && existsSync(bzImage) && rom !== undefined;
if (!ready) console.warn(`\n*** SKIPPING the iPXE boot test: needs qemu-system-x86_64, ipxe-qemu (${rom ?? 'no pxe-e1000.rom'}) and the amd64 probe image (make probe-image) ***\n`);

let f: ServeFixture | undefined;
afterAll(() => f?.cleanup());

describe.skipIf(!ready)('a real iPXE boots a node from edgeimg serve', () => {
  it('chains boot.ipxe to the MAC script, loads kernel and initrd, and the kernel fetches its config once', async () => {
    f = await buildServeFixture({
      sites: ['store-0412'],
      files: { kernel: bzImage!, initramfs: probe!.initrd },
      // the probe's transcript on the serial console (the last console= is /dev/console)
      cmdline: 'console=tty0 console=ttyS0 panic=-1 talos.platform=nocloud\n',
    });
    const events: ServeEvent[] = [];
    let configFetched: () => void = () => {};
    const fetched = new Promise<void>((ok) => (configFetched = ok));
    const s = await startServer({
      outDir: f.out,
      sites: ['store-0412'],
      catalogueDir: f.catalogue,
      cacheDir: f.cache,
      listen: '127.0.0.1:0',
      onEvent: (e) => {
        events.push(e);
        if (e.event === 'config') configFetched();
      },
    });
    let console_ = '';
    const qemu = spawn(
      'qemu-system-x86_64',
      ['-machine', 'pc', '-accel', 'tcg', '-m', '512', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', '-boot', 'n',
        '-netdev', `user,id=n0,bootfile=http://10.0.2.2:${s.port}/boot.ipxe`, '-device', `e1000,netdev=n0,mac=52:54:00:04:12:11,romfile=${rom}`],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    qemu.stdout!.on('data', (c: Buffer) => (console_ += c.toString('latin1')));
    qemu.stderr!.on('data', (c: Buffer) => (console_ += c.toString('latin1')));
    const exited = new Promise<void>((ok) => qemu.once('exit', () => ok()));
    try {
      const limit = new Promise<void>((ok) => setTimeout(ok, 150_000).unref());
      await Promise.race([fetched, exited, limit]);
      // let the guest finish its report, then stop it
      await Promise.race([exited, new Promise((ok) => setTimeout(ok, 5000))]);
    } finally {
      if (qemu.exitCode === null) {
        try {
          process.kill(-qemu.pid!, 'SIGKILL');
        } catch {
          // gone already
        }
        await exited;
      }
    }
    const summary = await s.close();
    const req = events.filter((e): e is RequestEvent => 'status' in e).map((e) => [e.event, e.path, e.status, e.complete ?? null]);
    const mac = '52-54-00-04-12-11';
    expect(req.slice(0, 5), console_.slice(-3000)).toEqual([
      ['boot-script', '/boot.ipxe', 200, null],
      ['node-script', `/ipxe/${mac}`, 200, null],
      ['asset', `/nb/${mac}/kernel`, 200, true],
      ['asset', `/nb/${mac}/initrd`, 200, true],
      ['config', `/config/${mac}`, 200, true],
    ]);
    // the booted kernel got exactly the node's user-data: the probe reports its sha256
    const cp1 = summary.sites[0]!.nodes.find((n) => n.node === 'cp-1')!;
    expect(cp1).toMatchObject({ fetched: true, fetches: 1 });
    expect(console_).toContain(cp1.sha256!);
  }, 240_000);
});
