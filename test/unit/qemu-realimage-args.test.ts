// buildQemuArgs' real-image options: firmware boots from media (no -kernel), boot order,
// writable NVMe/SATA scratch disks, user-mode networking with a loopback-only port forward,
// vCPUs and UEFI firmware; plus a smoke run in the real QEMU (when installed) that checks it
// accepts the command line and forwards the port.

import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildQemuArgs, runQemu, userNetworkArgs, type QemuArgsInput } from '../../src/verify/qemu.js';
import { freeLoopbackPort } from '../../src/verify/profiles/common.js';

const base: QemuArgsInput = { arch: 'amd64', accel: 'tcg', name: 'edgeimg-t', media: [] };

describe('buildQemuArgs for real images', () => {
  it('boots an ISO from firmware: no -kernel/-initrd/-append, boot order, writable NVMe scratch, 2 vCPUs', () => {
    const a = buildQemuArgs({
      ...base,
      cpus: 2,
      memoryMiB: 2048,
      media: [
        { path: '/c/nocloud-amd64.iso', kind: 'cdrom', bootIndex: 0 },
        { path: '/o/seed.iso', kind: 'cdrom' },
        { path: '/t/disk.raw', kind: 'nvme', readOnly: false, bootIndex: 1 },
      ],
    });
    const s = a.join(' ');
    expect(a).not.toContain('-kernel');
    expect(a).not.toContain('-initrd');
    expect(a).not.toContain('-append');
    expect(s).toContain('-m 2048 -smp 2');
    expect(s).toContain('-device ide-cd,drive=m0,bus=ide.0,bootindex=0');
    expect(s).toContain('-device ide-cd,drive=m1,bus=ide.1 ');
    expect(s).toContain('-drive if=none,id=m2,file=/t/disk.raw,format=raw,cache=unsafe -device nvme,drive=m2,serial=edgeimg0,bootindex=1');
    expect(s).not.toMatch(/id=m2[^ ]*readonly=on/);
  });

  it('SATA scratch disks share the AHCI ports with CD-ROMs on amd64 and become SCSI disks on arm64', () => {
    const amd = buildQemuArgs({
      ...base,
      media: [
        { path: '/c/k.iso', kind: 'cdrom', bootIndex: 0 },
        { path: '/t/d.raw', kind: 'sata-disk', readOnly: false },
      ],
    }).join(' ');
    expect(amd).toContain('-device ide-hd,drive=m1,bus=ide.1');
    const arm = buildQemuArgs({
      ...base,
      arch: 'arm64',
      firmware: { kind: 'bios', path: '/fw/QEMU_EFI.fd' },
      media: [
        { path: '/c/k.iso', kind: 'cdrom', bootIndex: 0 },
        { path: '/t/d.raw', kind: 'sata-disk', readOnly: false },
      ],
    }).join(' ');
    expect(arm).toContain('-bios /fw/QEMU_EFI.fd');
    expect(arm.match(/virtio-scsi-pci/g)).toHaveLength(1);
    expect(arm).toContain('-device scsi-cd,drive=m0,bus=scsi0.0,bootindex=0');
    expect(arm).toContain('-device scsi-hd,drive=m1,bus=scsi0.0');
  });

  it('UEFI pflash: read-only code, writable vars', () => {
    const s = buildQemuArgs({ ...base, firmware: { kind: 'pflash', code: '/fw/CODE,4M.fd', vars: '/w/VARS.fd' }, media: [{ path: '/c/k.iso', kind: 'cdrom' }] }).join(' ');
    expect(s).toContain('-drive if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE,,4M.fd');
    expect(s).toContain('-drive if=pflash,format=raw,unit=1,file=/w/VARS.fd');
  });

  it('user networking: the seed subnet, a 127.0.0.1-only forward to the guest address, and the seed MAC', () => {
    const a = buildQemuArgs({
      ...base,
      media: [{ path: '/c/k.iso', kind: 'cdrom' }],
      network: {
        subnet: '10.4.12.0/24',
        hostAddress: '10.4.12.1',
        dnsAddress: '10.4.12.3',
        guestAddress: '10.4.12.11',
        macAddress: '52:54:00:04:12:11',
        hostForwards: [{ hostPort: 40123, guestPort: 50000 }],
      },
    });
    expect(a[a.indexOf('-netdev') + 1]).toBe(
      'user,id=n0,net=10.4.12.0/24,host=10.4.12.1,dns=10.4.12.3,dhcpstart=10.4.12.11,hostfwd=tcp:127.0.0.1:40123-10.4.12.11:50000',
    );
    expect(a.slice(-2)).toEqual(['-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:04:12:11']);
    // without a guest address the forward goes to slirp's first DHCP lease
    expect(userNetworkArgs({ hostForwards: [{ hostPort: 1, guestPort: 2 }], restrict: true })[1]).toBe('user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:1-:2');
  });

  it('the probe command line is unchanged when no new option is given', () => {
    const a = buildQemuArgs({ ...base, kernel: 'k', initrd: 'i', append: 'x=1', media: [{ path: '/s/seed.iso', kind: 'cdrom' }] });
    expect(a.join(' ')).toBe(
      '-name edgeimg-t -machine q35 -accel tcg -cpu max -m 256 -smp 1 -nodefaults -no-user-config -display none -no-reboot -serial stdio ' +
        '-kernel k -initrd i -append console=ttyS0 quiet panic=-1 cryptomgr.notests edgeimg.media=1 x=1 ' +
        '-drive if=none,id=m0,file=/s/seed.iso,format=raw,media=cdrom,readonly=on -device ide-cd,drive=m0,bus=ide.0',
    );
  });

  it('rejects inconsistent or unsafe options', () => {
    const iso = { path: '/c/k.iso', kind: 'cdrom' as const };
    expect(() => buildQemuArgs({ ...base, media: [] })).toThrow(/at least one medium/);
    expect(() => buildQemuArgs({ ...base, kernel: 'k', media: [iso] })).toThrow(/needs an initrd/);
    expect(() => buildQemuArgs({ ...base, append: 'x', media: [iso] })).toThrow(/direct kernel boot/);
    expect(() => buildQemuArgs({ ...base, media: [{ ...iso, readOnly: false }] })).toThrow(/CD-ROM cannot be writable/);
    expect(() => buildQemuArgs({ ...base, cpus: 0, media: [iso] })).toThrow(/cpus/);
    expect(() => buildQemuArgs({ ...base, media: [{ ...iso, bootIndex: -1 }] })).toThrow(/boot index/);
    expect(() => userNetworkArgs({ macAddress: '52:54:00:04:12:11,x=1' })).toThrow(/MAC/);
    expect(() => userNetworkArgs({ subnet: '10.0.0.0/24,restrict=off' })).toThrow(/CIDR/);
    expect(() => userNetworkArgs({ guestAddress: '10.0.0.5,hostfwd=tcp::22-:22' })).toThrow(/IPv4/);
    expect(() => userNetworkArgs({ hostForwards: [{ hostPort: 70000, guestPort: 1 }] })).toThrow(/port/);
  });
});

const haveQemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status === 0;

describe.skipIf(!haveQemu)('real QEMU accepts the real-image command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeimg-qargs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts with ISO boot order, NVMe + SATA scratch disks and a port forward that accepts connections', async () => {
    const iso = join(dir, 'blank.iso');
    writeFileSync(iso, Buffer.alloc(2 * 1024 * 1024)); // not bootable: SeaBIOS just keeps looking
    const nvme = join(dir, 'nvme.raw');
    const sata = join(dir, 'sata.raw');
    writeFileSync(nvme, Buffer.alloc(1024 * 1024));
    writeFileSync(sata, Buffer.alloc(1024 * 1024));
    const port = await freeLoopbackPort();
    const ac = new AbortController();
    let connected: boolean | string = 'not tried';
    const tryConnect = async (): Promise<void> => {
      for (let i = 0; i < 40 && connected !== true; i++) {
        await new Promise((r) => setTimeout(r, 250));
        connected = await new Promise<boolean | string>((res) => {
          const s = connect({ host: '127.0.0.1', port }, () => {
            s.destroy();
            res(true);
          });
          s.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
        });
      }
      ac.abort();
    };
    const run = runQemu({
      arch: 'amd64',
      accel: 'tcg',
      media: [
        { path: iso, kind: 'cdrom', bootIndex: 0 },
        { path: nvme, kind: 'nvme', readOnly: false, bootIndex: 1 },
        { path: sata, kind: 'sata-disk', readOnly: false },
      ],
      cpus: 2,
      memoryMiB: 128,
      network: { subnet: '10.4.12.0/24', hostAddress: '10.4.12.1', dnsAddress: '10.4.12.3', guestAddress: '10.4.12.11', macAddress: '52:54:00:04:12:11', hostForwards: [{ hostPort: port, guestPort: 50000 }] },
      timeoutMs: 20_000,
      serialLog: join(dir, 'serial.log'),
      signal: ac.signal,
      stopAfter: null,
      killGraceMs: 500,
    });
    await tryConnect();
    const r = await run;
    expect(r.spawnError).toBeUndefined();
    expect(r.stderr).not.toMatch(/error|invalid|could not/i);
    expect(r.aborted).toBe(true); // it ran until we stopped it
    expect(connected).toBe(true);
  }, 60_000);
});
