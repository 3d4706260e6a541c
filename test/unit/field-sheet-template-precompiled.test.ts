// The field sheet's precompiled template (dist/precompiled/templates/, scripts/precompile.ts) is
// current, renders the same bytes as compiling templates/field-sheet.hbs at run time, and is not
// used for another template text.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMPLATE_SETS } from '../../scripts/precompile.js';
import { FIELD_SHEET_TEMPLATE, renderFieldSheet, type FieldSheetData } from '../../src/field/sheet.js';
import { compiledTemplatesDir, loadTemplate, precompiledTemplateModule } from '../../src/util/precompiled-template.js';
import { packagePath } from '../../src/util/paths.js';

const scratch = mkdtempSync(packagePath('.edgeimg-tmp-templates-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sheet: FieldSheetData = {
  site: 'store-0412',
  os: 'talos',
  osVersion: 'v1.13.9',
  inputDigest: 'sha256:0f00',
  labels: { tier: 'gold', country: 'de', note: '<b>&"quoted"</b>' },
  nodes: [
    {
      name: 'cp-1',
      role: 'controlplane',
      hostname: 'store-0412-cp-1',
      address: '10.4.12.11/24',
      mac: '52:54:00:04:12:11',
      hardwareClass: 'nuc12-amd64',
      arch: 'amd64',
      firmware: 'uefi',
      classStick: { name: 'nocloud-amd64.iso', sha256: 'ab'.repeat(32), standin: 'a test stand-in' },
      seedStick: { path: 'nodes/cp-1/seed.img', sha256: 'cd'.repeat(32) },
    },
    { name: 'w-<1>', role: 'worker', hostname: 'h', address: '10.4.12.12/24', hardwareClass: 'rpi4-arm64', arch: 'arm64', firmware: 'bios', classStick: { name: 'metal-arm64.raw.xz' } },
  ],
};

describe('the precompiled field sheet template', () => {
  it('is what scripts/precompile.ts writes for templates/field-sheet.hbs as it is', () => {
    expect(TEMPLATE_SETS).toContain(FIELD_SHEET_TEMPLATE);
    const code = precompiledTemplateModule(FIELD_SHEET_TEMPLATE);
    const file = join(compiledTemplatesDir(), `${FIELD_SHEET_TEMPLATE.id}.cjs`);
    if (existsSync(file)) expect(readFileSync(file, 'utf8') === code, 'run `make generate` (or npm run build)').toBe(true);
    else if (process.env.CI) throw new Error(`${file} missing: run \`npm run build\` (make test does)`);
  });

  it('renders the same bytes as the template compiled at run time', () => {
    mkdirSync(scratch, { recursive: true });
    writeFileSync(join(scratch, `${FIELD_SHEET_TEMPLATE.id}.cjs`), precompiledTemplateModule(FIELD_SHEET_TEMPLATE));
    const pre = loadTemplate(FIELD_SHEET_TEMPLATE, scratch);
    const now = loadTemplate(FIELD_SHEET_TEMPLATE, join(scratch, 'nothing-here'));
    expect([pre.precompiled, now.precompiled]).toEqual([true, false]);
    const node = (n: number, extra: object) => ({
      name: `n-${n}<i>`,
      role: n === 1 ? 'control plane' : 'worker',
      hostname: `h-${n}`,
      address: `10.0.0.${n}/24`,
      mac: n === 1 ? 'not in the catalogue' : `52:54:00:00:00:0${n}`,
      hardwareClass: 'c&"1"',
      arch: 'amd64',
      firmware: 'UEFI',
      classStick: { name: 'stick.iso', sha256: `sha256 ${'ab'.repeat(32)}`, standin: n === 1 ? 'a stand-in' : false },
      seedStick: { path: 'nodes/n/seed.img', sha256: `sha256 ${'cd'.repeat(32)}` },
      oneStick: false,
      ...extra,
    });
    for (const talos of [true, false]) {
      const context = {
        site: 'store-<0412>',
        os: talos ? 'Talos v1.13.9' : 'Kairos v3.5.1',
        talos,
        nodeCount: '2 nodes',
        standin: talos,
        inputDigest: 'sha256:00',
        labels: 'a=<b>, c="d"',
        nodes: [node(1, {}), node(2, { oneStick: { path: 'nodes/n-2/kairos-stick.iso', sha256: 'sha256 ee' } })],
      };
      expect(pre.render(context)).toBe(now.render(context));
    }
    // and through renderFieldSheet, whichever the build uses
    const html = renderFieldSheet(sheet);
    expect(html).toContain('store-0412-cp-1');
    expect(html).not.toContain('<b>&"quoted"</b>'); // escaped
  });

  it('is used after the template was compiled or precompiled in the same process (options stay unchanged)', () => {
    const before = JSON.stringify(FIELD_SHEET_TEMPLATE.options);
    precompiledTemplateModule(FIELD_SHEET_TEMPLATE);
    loadTemplate(FIELD_SHEET_TEMPLATE, join(scratch, 'nothing-here'));
    expect(JSON.stringify(FIELD_SHEET_TEMPLATE.options)).toBe(before);
    writeFileSync(join(scratch, `${FIELD_SHEET_TEMPLATE.id}.cjs`), precompiledTemplateModule(FIELD_SHEET_TEMPLATE));
    expect(loadTemplate(FIELD_SHEET_TEMPLATE, scratch).precompiled).toBe(true);
  });

  it('made from another template text is not used', () => {
    const dir = join(scratch, 'stale');
    mkdirSync(dir, { recursive: true });
    const code = precompiledTemplateModule(FIELD_SHEET_TEMPLATE).replace(/exports\.key = "[0-9a-f]{64}";/, `exports.key = "${'0'.repeat(64)}";`);
    writeFileSync(join(dir, `${FIELD_SHEET_TEMPLATE.id}.cjs`), code);
    expect(loadTemplate(FIELD_SHEET_TEMPLATE, dir).precompiled).toBe(false);
  });
});
