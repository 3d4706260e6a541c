// images.lock: deterministic text, strict parsing with positions, atomic pin updates.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { assetPathProblem, parseLock, readLock, serializeLock, writePins, type Pin } from '../../src/images/lock.js';
import { CatalogueError, EnvironmentError } from '../../src/util/diagnostics.js';
import { repoRoot } from '../helpers/catalogue.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'edgeimg-lock-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('images.lock text', () => {
  it('is the same bytes whatever order pins were added in, keys sorted by code point', () => {
    const pins: Array<[string, Pin]> = [
      ['talos/v1.13.9/x/nocloud-amd64.iso', { sha256: A, size: 3 }],
      ['kairos/v3.5.1/kairos-ubuntu-24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4+k3s1.iso', { sha256: B, size: 5 }],
      ['kairos/v3.5.1/Z-upper', { sha256: B, size: 1 }],
    ];
    const one = serializeLock(new Map(pins));
    const two = serializeLock(new Map([...pins].reverse()));
    expect(one).toBe(two);
    expect(Object.keys(JSON.parse(one).assets)).toEqual([
      'kairos/v3.5.1/Z-upper',
      'kairos/v3.5.1/kairos-ubuntu-24.04-standard-amd64-generic-v3.5.1-k3sv1.33.4+k3s1.iso',
      'talos/v1.13.9/x/nocloud-amd64.iso',
    ]);
    expect(one.endsWith('}\n')).toBe(true);
  });

  it('reads back what it wrote', () => {
    const pins = new Map<string, Pin>([['talos/v1.13.9/x/kernel-amd64', { sha256: A, size: 42 }]]);
    expect(parseLock(serializeLock(pins), 'images.lock')).toEqual(pins);
  });
});

describe('parsing images.lock', () => {
  const bad = (text: string): CatalogueError => {
    try {
      parseLock(text, 'catalogue/images.lock');
    } catch (err) {
      expect(err).toBeInstanceOf(CatalogueError);
      return err as CatalogueError;
    }
    throw new Error('accepted');
  };

  it('refuses a digest that is not 64 lower-case hex digits, at its line', () => {
    const e = bad(`{\n  "lockVersion": 1,\n  "assets": {\n    "talos/v1/x/kernel-amd64": { "sha256": "${A.toUpperCase()}", "size": 1 }\n  }\n}\n`);
    expect(e.message).toMatch(/^catalogue\/images\.lock:4:5: asset "talos\/v1\/x\/kernel-amd64": sha256 must be 64 lower-case hex digits$/);
  });

  it.each(['../../etc/passwd', 'talos/../x', '/talos/x', 'talos/v1/.hidden', 'other/x', 'talos'])('refuses the asset path %s', (key) => {
    const e = bad(JSON.stringify({ lockVersion: 1, assets: { [key]: { sha256: A, size: 1 } } }));
    expect(e.message).toContain('asset path');
    expect(assetPathProblem(key)).toBeDefined();
  });

  it('refuses invalid JSON with a position, unknown keys and another lockVersion', () => {
    expect(bad('{\n  "lockVersion": 1,\n  "assets": {,}\n}').diagnostics[0]).toMatchObject({ file: 'catalogue/images.lock', line: 3 });
    expect(bad('{"lockVersion": 1, "pins": {}}').message).toContain('unknown key "pins"');
    expect(bad('{"lockVersion": 2, "assets": {}}').message).toContain('lockVersion must be 1');
    expect(bad(`{"lockVersion": 1, "assets": {"talos/v/x/k": {"sha256": "${A}", "size": -1}}}`).message).toContain('size must be a whole number');
  });
});

describe('reading and writing the lock', () => {
  it('treats a missing images.lock as empty, and creates it on the first pin', () => {
    const cat = tmp();
    expect(readLock(cat).pins.size).toBe(0);
    writePins(cat, new Map([['talos/v1.13.9/x/kernel-amd64', { sha256: A, size: 1 }]]));
    expect(readLock(cat).pins.get('talos/v1.13.9/x/kernel-amd64')).toEqual({ sha256: A, size: 1 });
  });

  it('keeps pins written meanwhile by someone else and leaves no temporary file', () => {
    const cat = tmp();
    writePins(cat, new Map([['talos/v1/x/a', { sha256: A, size: 1 }]]));
    // another process adds a pin between our read and our write
    const other = serializeLock(new Map([['talos/v1/x/a', { sha256: A, size: 1 }], ['talos/v1/x/b', { sha256: B, size: 2 }]]));
    writeFileSync(join(cat, 'images.lock'), other);
    writePins(cat, new Map([['talos/v1/x/c', { sha256: B, size: 3 }]]));
    expect([...readLock(cat).pins.keys()]).toEqual(['talos/v1/x/a', 'talos/v1/x/b', 'talos/v1/x/c']);
    expect(readdirSync(cat)).toEqual(['images.lock']);
  });

  it('says which file it cannot write, as an environment problem', () => {
    const cat = tmp();
    writeFileSync(join(cat, 'file'), 'x');
    const where = join(cat, 'file'); // a catalogue "directory" that is a file
    expect(() => writePins(where, new Map([['talos/v1/x/a', { sha256: A, size: 1 }]]))).toThrow(EnvironmentError);
    expect(() => writePins(where, new Map([['talos/v1/x/a', { sha256: A, size: 1 }]]))).toThrow(/images\.lock/);
  });

  it('the example catalogue ships a valid lock without invented pins', () => {
    const text = readFileSync(join(repoRoot, 'catalogue', 'images.lock'), 'utf8');
    expect(parseLock(text, 'images.lock').size).toBe(0);
    expect(serializeLock(new Map())).toBe(text);
  });
});
