// QEMU options for network boot (src/verify/qemu.ts): slirp's DHCP boot file (an http:// URL
// the NIC's iPXE option ROM chains), the NIC's boot index, model and option ROM, and a firmware
// boot with no medium at all when the NIC boots. Every value is validated before it reaches
// QEMU's comma-separated option syntax.

import { describe, expect, it } from 'vitest';
import { buildQemuArgs, userNetworkArgs, type QemuArgsInput } from '../../src/verify/qemu.js';

const netboot = (network: QemuArgsInput['network'], more: Partial<QemuArgsInput> = {}): string[] =>
  buildQemuArgs({ arch: 'amd64', accel: 'tcg', name: 'edgeimg-test', media: [], network, ...more });

const after = (args: string[], flag: string): string[] => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));

describe('qemu options for network boot', () => {
  it('bootfile= carries the boot.ipxe URL; the NIC gets its MAC and boot index', () => {
    const args = netboot({ macAddress: '52:54:00:ED:9E:01', nicBootIndex: 0, bootFile: 'http://10.0.2.2:8080/boot.ipxe' });
    expect(after(args, '-netdev')).toEqual(['user,id=n0,bootfile=http://10.0.2.2:8080/boot.ipxe']);
    expect(after(args, '-device')).toEqual(['virtio-net-pci,netdev=n0,mac=52:54:00:ed:9e:01,bootindex=0']);
    // no disk, no kernel: firmware boots from the NIC
    expect(args).not.toContain('-kernel');
    expect(args).not.toContain('-drive');
    expect(args).not.toContain('-append');
  });

  it('bootfile= comes after the other slirp options', () => {
    const [, netdev] = userNetworkArgs({ subnet: '10.4.12.0/24', hostAddress: '10.4.12.1', restrict: true, bootFile: 'http://10.4.12.1/boot.ipxe' });
    expect(netdev).toBe('user,id=n0,net=10.4.12.0/24,host=10.4.12.1,restrict=on,bootfile=http://10.4.12.1/boot.ipxe');
  });

  it('NIC model and option ROM', () => {
    expect(userNetworkArgs({ nicModel: 'e1000', nicBootIndex: 2, romfile: 'pxe-e1000.rom' })[3]).toBe('e1000,netdev=n0,bootindex=2,romfile=pxe-e1000.rom');
    expect(userNetworkArgs({ romfile: '/usr/lib/ipxe/qemu/efi-virtio.rom' })[3]).toBe('virtio-net-pci,netdev=n0,romfile=/usr/lib/ipxe/qemu/efi-virtio.rom');
    // an empty romfile= loads no option ROM (AAVMF's own UEFI network stack, for instance)
    expect(userNetworkArgs({ romfile: '' })[3]).toBe('virtio-net-pci,netdev=n0,romfile=');
    // unset: exactly as before
    expect(userNetworkArgs({})).toEqual(['-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0']);
  });

  it('a firmware boot needs a medium, unless the NIC has a boot index', () => {
    expect(() => netboot(undefined)).toThrow(/at least one medium/);
    expect(() => netboot({ bootFile: 'http://10.0.2.2/boot.ipxe' })).toThrow(/at least one medium/);
    expect(() => netboot({ nicBootIndex: 0 })).not.toThrow();
    // a network boot with UEFI firmware and media that come after the NIC
    const args = netboot({ nicBootIndex: 0 }, {
      firmware: { kind: 'bios', path: '/usr/share/qemu/OVMF.fd' },
      media: [{ path: '/scratch.img', kind: 'virtio-disk', readOnly: false, bootIndex: 1 }],
    });
    expect(args).toContain('virtio-blk-pci,drive=m0,bootindex=1');
    expect(args).toContain('virtio-net-pci,netdev=n0,bootindex=0');
    expect(after(args, '-bios')).toEqual(['/usr/share/qemu/OVMF.fd']);
    // a direct kernel boot still needs no medium and takes no NIC boot index into account
    expect(() => netboot({}, { kernel: '/k', initrd: '/i' })).not.toThrow();
  });

  it('accepts http:// URLs with a host name, an IPv6 literal, a query', () => {
    for (const u of ['http://boot.example.net/boot.ipxe', 'http://[fd00::1]:8080/boot.ipxe', 'http://10.0.2.2:65535/ipxe?mac=aa-bb&x=1', 'http://10.0.2.2']) {
      expect(userNetworkArgs({ bootFile: u })[1]).toBe(`user,id=n0,bootfile=${u}`);
    }
  });

  it('refuses boot files QEMU could misread, or iPXE would not fetch over HTTP', () => {
    const bad = [
      'http://10.0.2.2/boot.ipxe,hostfwd=tcp::22-:22', // a comma would start a new option
      'http://10.0.2.2/boot ipxe',
      'http://10.0.2.2/"boot.ipxe"',
      "http://10.0.2.2/'x'",
      'http://10.0.2.2/a\nb',
      'tftp://10.0.2.2/boot.ipxe',
      'https://10.0.2.2/boot.ipxe',
      'boot.ipxe',
      'http://',
      'http://10.0.2.2:0/boot.ipxe',
      'http://10.0.2.2:70000/boot.ipxe',
      `http://10.0.2.2/${'x'.repeat(120)}`, // the BOOTP file field holds 127 characters
    ];
    for (const u of bad) expect(() => userNetworkArgs({ bootFile: u }), u).toThrow(/boot file/);
  });

  it('refuses bad boot indexes, unknown NIC models and ROM file names with option syntax', () => {
    for (const i of [-1, 1.5, Number.NaN]) expect(() => userNetworkArgs({ nicBootIndex: i })).toThrow(/boot index/);
    expect(() => userNetworkArgs({ nicModel: 'e1000e' as 'e1000' })).toThrow(/NIC model/);
    expect(() => userNetworkArgs({ nicModel: 'virtio-net-pci,x-foo=1' as 'e1000' })).toThrow(/NIC model/);
    for (const r of ['efi-virtio.rom,bootindex=9', 'my rom.rom', 'a"b.rom', 'x\n.rom']) {
      expect(() => userNetworkArgs({ romfile: r }), r).toThrow(/ROM file/);
    }
  });
});
