// Progress of a long build on stderr: a redrawn bar on a terminal, plain lines in CI logs, and
// the per-site lines whole and in between (src/util/progress.ts, wired in src/cli/build.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';

let c: CatalogueCopy;
const SITES = 16;

async function build(isTTY: boolean, ci: string | undefined, extra: string[] = []): Promise<string> {
  let err = '';
  const saved = process.env.CI;
  if (ci === undefined) delete process.env.CI;
  else process.env.CI = ci;
  try {
    const code = await main(['build', '--all', '--force', '--catalogue', c.catalogue, '--out', c.path('out'), '--secrets', c.path('secrets'), ...extra], { out: () => {}, err: (s) => void (err += s), isTTY });
    expect(code, err).toBe(0);
  } finally {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
  return err;
}

describe('build progress', () => {
  beforeAll(() => {
    c = copyCatalogue();
    for (let i = 0; i < SITES - 4; i++) {
      const id = `store-${String(900 + i)}`;
      c.write(`catalogue/sites/${id}.yaml`, `apiVersion: edgeimg.dev/v1alpha1\nkind: Site\nmetadata:\n  name: ${id}\nspec:\n  profile: store-single\n  subnet: 10.9.${i}.0/24\n  nodes:\n    - { name: cp-1, mac: "00:e0:4c:09:${String(i).padStart(2, '0')}:11" }\n`);
    }
  });
  afterAll(() => c.cleanup());

  it('draws a bar with N/M, rate and ETA on a terminal, and keeps log lines whole', async () => {
    const err = await build(true, undefined);
    expect(err).toContain('\r');
    expect(err).toMatch(/16\/16/);
    // every site's own line is complete on a line of its own, not cut by the bar
    for (const line of err.split('\n').filter((l) => l.includes('nodes built') || l.includes('node built'))) {
      expect(line.replace(/^.*\r\x1b\[2?K/, '')).toMatch(/^edgeimg: [a-z]+-\d+: \d+ nodes? built$/);
    }
  }, 180_000);

  it('writes plain lines, no control characters, under CI=true', async () => {
    const err = await build(true, 'true');
    expect(err).not.toMatch(/[\r\x1b]/);
    expect(err).toMatch(/edgeimg: building.*16\/16/);
    const plain = await build(false, undefined);
    expect(plain).not.toMatch(/[\r\x1b]/);
  }, 180_000);
});
