import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

import { installerImage, schematicId, schematicYaml } from '../../src/render/talos/index.js';
import { GoYamlUnsupported, goFormatFloat, goYamlKeyLess, resolvesToString } from '../../src/render/talos/goyaml.js';
import { nucAmd64, sbcArm64, talosSite, talosSite114 } from '../fixtures/plans.js';

describe('Image Factory schematic IDs', () => {
  // siderolabs/image-factory pkg/schematic/schematic_test.go (TestID, TestUnmarshalID)
  it.each([
    ['empty', {}, '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba'],
    ['extra kernel args', { extraKernelArgs: ['noapic', 'nolapic'] }, '9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c'],
    ['meta', { meta: [{ key: 10, value: 'foo' }] }, 'd308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f'],
    [
      'overlay',
      { overlay: { image: 'siderolabs/sbc-raspberrypi', name: 'rpi_generic' } },
      'ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9',
    ],
    ['secureboot', { secureboot: { includeWellKnownCertificates: true } }, 'fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6'],
  ])('matches the upstream test vector: %s', (_name, input, id) => {
    expect(schematicId(input)).toBe(id);
  });

  // IDs the public factory returned, as recorded in public repositories and docs.
  it.each([
    [['siderolabs/qemu-guest-agent'], 'ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515'],
    [['siderolabs/iscsi-tools', 'siderolabs/util-linux-tools'], '613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245'],
    [['siderolabs/totally-not-real-ext'], '068236bd62b862fce9936f0300ef192d201331174606f921e8fc381f3e4a0000'],
  ])('matches the factory for system extensions %j', (extensions, id) => {
    expect(schematicId({ extensions, extraKernelArgs: [] })).toBe(id);
  });

  it('is the sha256 of the marshalled schematic', () => {
    const yaml = schematicYaml(nucAmd64.factory);
    expect(schematicId(nucAmd64.factory)).toBe(createHash('sha256').update(yaml).digest('hex'));
  });

  it('writes the empty schematic as yaml.v3 does', () => {
    expect(schematicYaml({ extensions: [], extraKernelArgs: [] })).toBe('customization: {}\n');
  });

  it('indents sequences under their key with 4 spaces, in struct field order', () => {
    expect(schematicYaml({ ...nucAmd64.factory, overlay: { image: 'siderolabs/sbc-raspberrypi', name: 'rpi_generic' } })).toBe(
      [
        'overlay:',
        '    image: siderolabs/sbc-raspberrypi',
        '    name: rpi_generic',
        'customization:',
        '    extraKernelArgs:',
        '        - net.ifnames=0',
        '    systemExtensions:',
        '        officialExtensions:',
        '            - siderolabs/intel-ucode',
        '            - siderolabs/i915',
        '',
      ].join('\n'),
    );
  });

  it('keeps the extension order as given, like the factory API (only its web wizard sorts)', () => {
    const a = schematicId({ extensions: ['siderolabs/i915', 'siderolabs/intel-ucode'] });
    const b = schematicId({ extensions: ['siderolabs/intel-ucode', 'siderolabs/i915'] });
    expect(a).not.toBe(b);
  });

  it('writes mappings inside sequence items two columns after the dash', () => {
    expect(schematicYaml({ meta: [{ key: 10, value: 'foo' }, { key: 12, value: 'a\nb\n' }] })).toBe(
      ['customization:', '    meta:', '        - key: 10', '          value: foo', '        - key: 12', '          value: |', '            a', '            b', ''].join('\n'),
    );
  });

  it('quotes scalars the way yaml.v3 does', () => {
    const yaml = schematicYaml({
      extraKernelArgs: ['yes', 'true', '10', '0x1F', '1.5', '1:20', '2024-01-02', '', '~', '{}', 'a: b', 'a #b', ' lead', '- x', "it's", 'tab\there', 'console=ttyS0,115200', '-v', 'a:b', '<<'],
    });
    expect(yaml.split('\n').slice(2, -1)).toEqual([
      '        - "yes"',
      '        - "true"',
      '        - "10"',
      '        - "0x1F"',
      '        - "1.5"',
      '        - "1:20"',
      '        - "2024-01-02"',
      '        - ""',
      '        - "~"',
      "        - '{}'",
      "        - 'a: b'",
      "        - 'a #b'",
      "        - ' lead'",
      "        - '- x'",
      "        - it's",
      '        - "tab\\there"',
      '        - console=ttyS0,115200',
      '        - -v',
      '        - a:b',
      '        - <<',
    ]);
  });

  it('sorts overlay option keys like Go maps and formats numbers like Go', () => {
    const yaml = schematicYaml({ overlay: { image: 'i', name: 'rpi', options: { b10: 1, b9: 2.5, a: { z: true, y: null }, big: 1234567.5 } } });
    expect(yaml).toBe(
      [
        'overlay:',
        '    image: i',
        '    name: rpi',
        '    options:',
        '        a:',
        '            "y": null',
        '            z: true',
        '        b9: 2.5',
        '        b10: 1',
        '        big: 1.2345675e+06',
        'customization: {}',
        '',
      ].join('\n'),
    );
  });

  it('refuses values it cannot write byte-exactly instead of guessing', () => {
    expect(() => schematicYaml({ meta: [{ key: 10, value: 'x\n\n' }] })).toThrow(GoYamlUnsupported);
    expect(() => schematicYaml({ meta: [{ key: 256, value: 'x' }] })).toThrow(/uint8/);
  });

  it('emits YAML that reads back as the same schematic', () => {
    const text = fc.string({ unit: fc.constantFrom(...'ab0123456789 :#-?[]{},&*!|>\'"%@`~.\t\n\\yYnN+_ü\u00a0\u2028'.split('')), maxLength: 12 });
    fc.assert(
      fc.property(fc.array(text, { maxLength: 4 }), fc.array(text, { maxLength: 3 }), (args, exts) => {
        let yaml: string;
        try {
          yaml = schematicYaml({ extraKernelArgs: args, extensions: exts });
        } catch (e) {
          if (e instanceof GoYamlUnsupported) return;
          throw e;
        }
        const back = parse(yaml) as { customization: { extraKernelArgs?: string[]; systemExtensions?: { officialExtensions: string[] } } };
        expect(back.customization.extraKernelArgs ?? []).toEqual(args);
        expect(back.customization.systemExtensions?.officialExtensions ?? []).toEqual(exts);
      }),
      { numRuns: 400 },
    );
  });
});

describe('yaml.v3 helpers', () => {
  it('resolves plain scalars like yaml.v3', () => {
    for (const s of ['true', 'False', 'null', '~', '', '12', '-12', '+1', '0o17', '0b101', '1_000', '1e3', '.5', '.inf', '2001-12-14', '2001-12-14t21:59:43.10Z']) {
      expect(resolvesToString(s), s).toBe(false);
    }
    for (const s of ['yes', 'on', 'abc', '1.2.3', '2001-13-01', '0x', '<<', '.', '1e', '10.4.12.0/24', 'v1.13.4']) {
      expect(resolvesToString(s), s).toBe(true);
    }
  });

  it('orders keys with yaml.v3 natural order', () => {
    const keys = ['b10', 'a', 'b9', 'B', 'a1', 'a_'];
    expect([...keys].sort((x, y) => (goYamlKeyLess(x, y) ? -1 : goYamlKeyLess(y, x) ? 1 : 0))).toEqual(['B', 'a', 'a_', 'a1', 'b9', 'b10']);
  });

  it('formats floats like strconv.FormatFloat(f, g, -1, 64)', () => {
    expect([0.5, 2.5, 1e-5, 0.0001, 123456.5, 1234567.5, 1e21].map(goFormatFloat)).toEqual(['0.5', '2.5', '1e-05', '0.0001', '123456.5', '1.2345675e+06', '1e+21']);
  });
});

describe('installer image', () => {
  it('is the factory nocloud installer for the hardware schematic at the site Talos version', () => {
    const image = installerImage(talosSite, nucAmd64);
    expect(image).toMatch(/^factory\.talos\.dev\/nocloud-installer\/[0-9a-f]{64}:v1\.13\.4$/);
    expect(image).toBe(`factory.talos.dev/nocloud-installer/${schematicId(nucAmd64.factory)}:v1.13.4`);
    expect(installerImage(talosSite114, sbcArm64)).toBe(
      'factory.talos.dev/nocloud-installer/ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9:v1.14.0',
    );
  });
});
