// runQemu's process handling against fake qemu binaries (no guest needed): hard timeout, abort,
// early stop after the END line, spawn failure, and the process 'exit' hook. Every fake starts a
// grandchild whose command line carries a unique marker, so "nothing left behind" is checked
// for the whole process group, not just the leader.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildQemuArgs, liveQemuGroups, runQemu, type RunQemuOptions } from '../../src/verify/qemu.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeimg-qemutest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function fake(body: string): { bin: string; marker: string } {
  const marker = `edgeimg-fake-${process.pid}-${n++}`;
  const bin = join(dir, `${marker}.sh`);
  writeFileSync(bin, `#!/bin/sh\n${body.replaceAll('MARKER', marker)}\n`);
  chmodSync(bin, 0o755);
  return { bin, marker };
}

function pgrep(marker: string): number[] {
  const r = spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

const medium = join(dir, 'seed.iso');
writeFileSync(medium, Buffer.alloc(4096));

function opts(bin: string, extra: Partial<RunQemuOptions> = {}): RunQemuOptions {
  return {
    arch: 'amd64',
    kernel: '/nonexistent/vmlinuz',
    initrd: '/nonexistent/initrd.img',
    append: 'edgeimg.nonce=t',
    media: [{ path: medium, kind: 'cdrom' }],
    timeoutMs: 10_000,
    serialLog: join(dir, `serial-${n++}.log`),
    accel: 'tcg',
    qemuBinary: bin,
    killGraceMs: 300,
    ...extra,
  };
}

// prints two transcript lines, starts a marked grandchild, and never exits by itself
const HANGING = `echo "EDGEIMG-PROBE BEGIN v1 nonce=t"
sh -c 'sleep 6021; :' MARKER-child &
echo "EDGEIMG-PROBE KERNEL release=x machine=y"
wait`;

describe('runQemu process handling', () => {
  it('passes the serial output through and returns the exit code', async () => {
    const { bin } = fake('echo "EDGEIMG-PROBE BEGIN v1 nonce=t"\necho "EDGEIMG-PROBE END status=ok files=0"\nexit 3');
    const o = opts(bin);
    const r = await runQemu(o);
    expect(r.exitCode).toBe(3);
    expect(r.timedOut).toBe(false);
    expect(r.aborted).toBe(false);
    expect(r.serial).toContain('EDGEIMG-PROBE END status=ok files=0');
    expect(readFileSync(o.serialLog, 'utf8')).toBe(r.serial);
    expect(r.argv[0]).toBe(bin);
    expect(r.argv).toContain(r.name);
  });

  it('kills the whole process group on timeout and reaps it', async () => {
    const { bin, marker } = fake(HANGING);
    const t0 = Date.now();
    const r = await runQemu(opts(bin, { timeoutMs: 1000 }));
    expect(r.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000 + 300 + 2500);
    expect(r.serial).toContain('KERNEL release=x');
    expect(pgrep(marker)).toEqual([]);
    expect(pgrep('sleep 6021')).toEqual([]);
    expect(liveQemuGroups()).toEqual([]);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const { bin, marker } = fake(`trap '' TERM\n${HANGING}`);
    const r = await runQemu(opts(bin, { timeoutMs: 500, killGraceMs: 300 }));
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGKILL');
    expect(pgrep(marker)).toEqual([]);
  });

  it('stops on abort (Ctrl-C) and leaves nothing behind', async () => {
    const { bin, marker } = fake(HANGING);
    const ac = new AbortController();
    const r = await runQemu(
      opts(bin, {
        signal: ac.signal,
        onSerialLine: (l) => {
          if (l.includes('KERNEL')) ac.abort();
        },
      }),
    );
    expect(r.aborted).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(pgrep(marker)).toEqual([]);
  });

  it('does not start at all when already aborted', async () => {
    const { bin, marker } = fake(HANGING);
    const ac = new AbortController();
    ac.abort();
    const r = await runQemu(opts(bin, { signal: ac.signal }));
    expect(r.aborted).toBe(true);
    expect(r.durationMs).toBe(0);
    expect(pgrep(marker)).toEqual([]);
  });

  it('stops a guest that printed END but does not power off', async () => {
    const { bin, marker } = fake(`echo "EDGEIMG-PROBE END status=ok files=0"\n${HANGING}`);
    const t0 = Date.now();
    const r = await runQemu(opts(bin, { stopGraceMs: 200, timeoutMs: 20_000 }));
    expect(r.forcedStop).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(pgrep(marker)).toEqual([]);
  });

  it('reports a binary that cannot be started', async () => {
    const r = await runQemu(opts(join(dir, 'no-such-qemu')));
    expect(r.spawnError).toMatch(/ENOENT/);
    expect(r.exitCode).toBe(null);
  });

  it("the process 'exit' hook kills live groups when the parent exits early", () => {
    const { bin, marker } = fake(HANGING);
    const script = join(dir, 'exit-hook.mts');
    const qemuTs = resolve('src/verify/qemu.ts');
    writeFileSync(
      script,
      `import { runQemu } from ${JSON.stringify(qemuTs)};
void runQemu(${JSON.stringify(opts(bin, { timeoutMs: 60_000 }))});
setTimeout(() => process.exit(0), 700);
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(pgrep(marker)).toEqual([]);
    expect(pgrep('sleep 6021')).toEqual([]);
  });

  it.skipIf(!existsSync('/usr/bin/setpriv') && !existsSync('/bin/setpriv'))(
    'a parent killed with SIGKILL (no hook can run) still takes its qemu down (parent-death signal)',
    async () => {
      const { bin } = fake('exec sleep 6031');
      const script = join(dir, 'sigkill.mts');
      writeFileSync(
        script,
        `import { runQemu } from ${JSON.stringify(resolve('src/verify/qemu.ts'))};
void runQemu(${JSON.stringify(opts(bin, { timeoutMs: 60_000 }))});
`,
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: 'ignore' });
      const exited = new Promise<NodeJS.Signals | null>((res) => child.once('exit', (_c, sig) => res(sig)));
      const wait = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));
      // the fake qemu is running ...
      for (let i = 0; i < 200 && pgrep('sleep 6031').length === 0; i++) await wait(50);
      expect(pgrep('sleep 6031').length).toBe(1);
      // ... and its parent dies without running any hook
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      // the kernel delivers the parent-death signal as the parent exits; allow it a moment
      for (let i = 0; i < 40 && pgrep('sleep 6031').length > 0; i++) await wait(50);
      expect(pgrep('sleep 6031')).toEqual([]);
    },
  );
});

describe('buildQemuArgs', () => {
  const base = { kernel: 'k', initrd: 'i', append: 'edgeimg.nonce=x', name: 'edgeimg-t', accel: 'tcg' as const };

  it('amd64: q35, AHCI CD-ROM, xHCI USB stick, virtio disk, serial on stdio', () => {
    const a = buildQemuArgs({
      ...base,
      arch: 'amd64',
      media: [
        { path: '/s/seed.iso', kind: 'cdrom' },
        { path: '/s/seed,1.img', kind: 'usb' },
        { path: '/s/d.img', kind: 'virtio-disk' },
      ],
    });
    const s = a.join(' ');
    expect(s).toContain('-name edgeimg-t -machine q35 -accel tcg -cpu max -m 256');
    expect(s).toContain('-nodefaults');
    expect(s).toContain('-no-reboot');
    expect(s).toContain('-serial stdio');
    expect(a[a.indexOf('-append') + 1]).toBe('console=ttyS0 quiet panic=-1 cryptomgr.notests edgeimg.media=3 edgeimg.nonce=x');
    expect(s).toContain('-drive if=none,id=m0,file=/s/seed.iso,format=raw,media=cdrom,readonly=on -device ide-cd,drive=m0,bus=ide.0');
    expect(s).toContain('-device qemu-xhci,id=xhci -drive if=none,id=m1,file=/s/seed,,1.img,format=raw,readonly=on');
    expect(s).toContain('-device usb-storage,bus=xhci.0,drive=m1,removable=on');
    expect(s).toContain('-device virtio-blk-pci,drive=m2');
  });

  it('arm64: virt, cortex-a57 under TCG, ttyAMA0, virtio-scsi CD-ROM; kvm falls back to tcg cross-arch', () => {
    const a = buildQemuArgs({ ...base, accel: 'kvm', arch: 'arm64', media: [{ path: '/s/seed.iso', kind: 'cdrom' }] });
    const s = a.join(' ');
    if (process.arch !== 'arm64') expect(s).toContain('-machine virt -accel tcg -cpu cortex-a57');
    expect(a[a.indexOf('-append') + 1]).toMatch(/^console=ttyAMA0 /);
    expect(s).toContain('-device virtio-scsi-pci,id=scsi0 -device scsi-cd,drive=m0,bus=scsi0.0');
  });

  it('noBaseAppend uses the append string alone', () => {
    const a = buildQemuArgs({ ...base, arch: 'amd64', media: [], noBaseAppend: true });
    expect(a[a.indexOf('-append') + 1]).toBe('edgeimg.nonce=x');
  });
});
