import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parse } from 'yaml';
import { emitYaml, isPlainSafe } from '../../src/util/yaml-emit.js';

const read11 = (s: string): unknown => parse(s, { version: '1.1' });
const read12 = (s: string): unknown => parse(s, { version: '1.2' });

describe('emitYaml', () => {
  it('quotes every string that YAML 1.1 or 1.2 would read as another type', () => {
    const tricky = ['yes', 'No', 'on', 'OFF', 'y', 'true', 'null', '~', '', '0644', '0x1F', '1_000', '1:20', '3.14', '.inf', '-.5', '1e3',
      '2024-01-02', '2001-12-14t21:59:43.10-05:00', '<<', '=', '- a', '-', '---', '? x', 'a: b', 'a #b', 'x:', ' lead', 'trail ', '#c', '*ref', '&anc', '!tag', '%p', '@x', '`x', '"q"', "'s'", '{}', '[]', '|', '>'];
    for (const s of tricky) {
      const y = emitYaml({ k: s, l: [s] }, { indent: 2 });
      expect(read11(y), `${s} -> ${y}`).toEqual({ k: s, l: [s] });
      expect(read12(y), `${s} -> ${y}`).toEqual({ k: s, l: [s] });
    }
    expect(isPlainSafe('--cluster-init')).toBe(true);
    expect(isPlainSafe('52:54:00:04:12:11')).toBe(false); // sexagesimal int in YAML 1.1
  });

  it('writes PEM blocks and file contents as literal blocks', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const y = emitYaml({ ca: pem, files: [{ path: '/x', content: 'a\nb' }] }, { indent: 4 });
    expect(y).toContain('ca: |\n    -----BEGIN CERTIFICATE-----\n');
    expect(y).toContain('content: |-\n');
    expect(read11(y)).toEqual({ ca: pem, files: [{ path: '/x', content: 'a\nb' }] });
  });

  it('round-trips arbitrary plain data through both YAML versions', () => {
    const key = fc.string({ minLength: 1, maxLength: 8 });
    const leaf = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
      fc.array(fc.constantFrom('line', '', ' indented', 'x: y', '#'), { minLength: 2, maxLength: 5 }).map((l) => l.join('\n')));
    const tree = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(key, tie('node'), { maxKeys: 4 })),
    })).node;
    fc.assert(
      fc.property(fc.dictionary(key, tree, { minKeys: 1, maxKeys: 5 }), fc.constantFrom(2, 4), (doc, indent) => {
        const y = emitYaml(doc, { indent });
        expect(read12(y)).toEqual(doc);
        expect(read11(y)).toEqual(doc);
      }),
      { numRuns: 400 },
    );
  });
});
