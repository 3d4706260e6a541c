// The KVM probe against fake qemu binaries: a hang is cut off by the hard timeout and the whole
// process group (including a grandchild) is killed; exit 85 means usable; anything else is not.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kvmProbeFirmware, liveQemuGroups, probeKvm, resetKvmProbeCache } from '../../src/verify/qemu.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeimg-kvmtest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fake(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** pids whose command line contains `marker` (pgrep -f), excluding pgrep itself. */
function pgrep(marker: string): number[] {
  const r = spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number);
}

// the device check needs an existing, read/write path: use a plain file
const fakeDev = join(dir, 'kvm');
writeFileSync(fakeDev, '');

describe.skipIf(arch() !== 'x64')('probeKvm', () => {
  it('gives up on a hanging qemu within the timeout and kills its whole process group', async () => {
    // the fake starts a grandchild (its command line carries the marker) and waits forever
    const hang = fake('qemu-hang', `sh -c 'sleep 6011; :' edgeimg-fake-hang-child "$@" &\nwait`);
    const t0 = Date.now();
    const r = await probeKvm(800, { qemuBinary: hang, kvmDevice: fakeDev, fresh: true });
    const took = Date.now() - t0;
    expect(r.usable).toBe(false);
    expect(r.reason).toMatch(/hung/);
    expect(took).toBeLessThan(800 + 2000);
    expect(pgrep('edgeimg-fake-hang-child')).toEqual([]);
    expect(pgrep('sleep 6011')).toEqual([]);
    expect(pgrep('qemu-hang')).toEqual([]);
    expect(liveQemuGroups()).toEqual([]);
  });

  it('is usable when the test guest exits through isa-debug-exit (85)', async () => {
    const ok = fake('qemu-ok', 'exit 85');
    const r = await probeKvm(3000, { qemuBinary: ok, kvmDevice: fakeDev, fresh: true });
    expect(r).toMatchObject({ usable: true });
  });

  it('reports a failing qemu with its first stderr line', async () => {
    const bad = fake('qemu-bad', 'echo "qemu-system-x86_64: warning: host lacks pni" >&2\necho "qemu: error: failed to set MSR" >&2\nexit 1');
    const r = await probeKvm(3000, { qemuBinary: bad, kvmDevice: fakeDev, fresh: true });
    expect(r.usable).toBe(false);
    expect(r.reason).toBe('a KVM test guest failed (exit code 1): qemu: error: failed to set MSR');
  });

  it('reports a missing device and a missing binary', async () => {
    const r1 = await probeKvm(3000, { kvmDevice: join(dir, 'nope'), fresh: true });
    expect(r1).toEqual({ usable: false, reason: `${join(dir, 'nope')} does not exist` });
    const r2 = await probeKvm(3000, { qemuBinary: join(dir, 'no-such-qemu'), kvmDevice: fakeDev, fresh: true });
    expect(r2.usable).toBe(false);
    expect(r2.reason).toMatch(/cannot run/);
  });

  it('caches the result per process', async () => {
    resetKvmProbeCache();
    const counter = join(dir, 'count');
    const counting = fake('qemu-count', `echo x >> ${counter}\nexit 85`);
    await probeKvm(3000, { qemuBinary: counting, kvmDevice: fakeDev });
    await probeKvm(3000, { qemuBinary: counting, kvmDevice: fakeDev });
    expect(execFileSync('wc', ['-l', counter], { encoding: 'utf8' }).trim().split(' ')[0]).toBe('1');
  });

  it('firmware: 64 KiB with a far jump at the reset vector', () => {
    const fw = kvmProbeFirmware();
    expect(fw.length).toBe(65536);
    expect([...fw.subarray(0xfff0, 0xfff5)]).toEqual([0xea, 0x00, 0x00, 0x00, 0xf0]);
  });
});

const haveQemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).status === 0;

describe.skipIf(arch() !== 'x64' || !haveQemu)('probeKvm firmware under TCG', () => {
  it('the long-mode test guest really exits with 85 (run under TCG, where it must work)', () => {
    const fw = join(dir, 'fw.bin');
    writeFileSync(fw, kvmProbeFirmware());
    const r = spawnSync(
      'qemu-system-x86_64',
      ['-machine', 'pc', '-accel', 'tcg', '-m', '16', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-bios', fw,
        '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04'],
      { timeout: 20_000 },
    );
    expect(r.status).toBe(85);
  });
});
