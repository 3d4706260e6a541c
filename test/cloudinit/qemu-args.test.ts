// The two small options src/verify/qemu.ts gained for the reference NoCloud client: snapshot
// disks (the client's root file system is never written) and the TCG CPU model.

import { describe, expect, it } from 'vitest';
import { buildQemuArgs } from '../../src/verify/qemu.js';
import { clientKernelArgs } from '../../src/verify/cloudinit/index.js';

const base = { arch: 'amd64' as const, name: 'edgeimg-test', kernel: '/k', initrd: '/i', noBaseAppend: true, append: 'console=ttyS0' };

describe('qemu options for the cloud-init client', () => {
  it('a snapshot disk is guest-writable but never written back', () => {
    const args = buildQemuArgs({ ...base, accel: 'tcg', media: [{ path: '/r.img', kind: 'virtio-disk', snapshot: true }, { path: '/s.iso', kind: 'cdrom' }] });
    expect(args).toContain('if=none,id=m0,file=/r.img,format=raw,snapshot=on,cache=unsafe');
    expect(args).toContain('if=none,id=m1,file=/s.iso,format=raw,media=cdrom,readonly=on');
    expect(() => buildQemuArgs({ ...base, accel: 'tcg', media: [{ path: '/s.iso', kind: 'cdrom', snapshot: true }] })).toThrow(/CD-ROM cannot be a snapshot/);
  });

  it('tcgCpu picks the CPU model under TCG only, and only a plain model name', () => {
    const cpu = (accel: 'tcg' | 'kvm', tcgCpu?: string): string => {
      const a = buildQemuArgs({ ...base, accel, media: [], tcgCpu });
      return a[a.indexOf('-cpu') + 1]!;
    };
    expect(cpu('tcg')).toBe('max');
    expect(cpu('tcg', 'qemu64')).toBe('qemu64');
    // KVM (when the host can run the guest) keeps `host`
    if (process.arch === 'x64') expect(cpu('kvm', 'qemu64')).toBe('host');
    expect(() => cpu('tcg', 'qemu64,+avx')).toThrow(/not a plain model name/);
  });

  it('the client kernel command line keeps the console quiet and carries the nonce', () => {
    const a = clientKernelArgs('abc123', { seedWaitSeconds: 0 });
    expect(a).toMatch(/^console=ttyS0 root=\/dev\/vda rootfstype=ext4 rw quiet loglevel=1 /);
    expect(a).toContain('net.ifnames=0');
    expect(a).toContain('edgeimg.nonce=abc123');
    expect(a).toContain('edgeimg.seedwait=0');
    expect(clientKernelArgs('x', { predictableIfnames: true })).toContain('net.ifnames=1');
    expect(() => clientKernelArgs('bad nonce')).toThrow(/invalid nonce/);
  });
});
