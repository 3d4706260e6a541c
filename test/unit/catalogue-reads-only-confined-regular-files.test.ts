// Catalogue files, overlays and the CA bundle are regular files of at most 4 MiB inside the
// catalogue (the catalogue directory or overlays/ beside it); symlinks are refused, never
// followed or silently skipped; a device or FIFO fails at once with a positioned error.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { planFleet } from '../../src/catalogue/index.js';
import { MAX_CATALOGUE_FILE_BYTES } from '../../src/catalogue/files.js';
import { type Diagnostic } from '../../src/util/diagnostics.js';
import { copyCatalogue, errorsOf, type CatalogueCopy } from '../helpers/catalogue.js';

const posix = process.platform !== 'win32';

let copy: CatalogueCopy | undefined;
afterEach(() => {
  copy?.cleanup();
  copy = undefined;
});


function lineOf(c: CatalogueCopy, rel: string, needle: string): number {
  return readFileSync(c.path(rel), 'utf8').split('\n').findIndex((l) => l.includes(needle)) + 1;
}

function expectError(diags: Diagnostic[], fileEnd: string, line: number, pattern: RegExp): void {
  const hit = diags.find((d) => d.file.endsWith(fileEnd) && d.line === line && pattern.test(d.message));
  expect(hit, `no ${pattern} at ${fileEnd}:${line}; got:\n${diags.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`).join('\n')}`).toBeDefined();
}

/** Point store-0412's node overlay reference at `ref`; returns the line of the reference. */
function pointNodeOverlayAt(c: CatalogueCopy, ref: string): number {
  c.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('../../overlays/node-cp1-extra-sans.yaml', ref));
  return lineOf(c, 'catalogue/sites/store-0412.yaml', ref);
}

describe.runIf(posix)('catalogue files are regular files inside the catalogue', () => {
  it('refuses a symlinked site file instead of silently skipping it', async () => {
    copy = copyCatalogue();
    const target = copy.path('elsewhere.yaml');
    writeFileSync(target, readFileSync(copy.path('catalogue/sites/store-0007.yaml'), 'utf8').replace('name: store-0007', 'name: store-0008'));
    symlinkSync(target, copy.path('catalogue/sites/store-0008.yaml'));
    expectError(await errorsOf(copy), 'sites/store-0008.yaml', 1, /is a symbolic link; catalogue files must be regular files inside the catalogue \(symlinks are not followed\)/);
  });

  it('refuses a symlink inside the catalogue even when it points inside the catalogue', async () => {
    copy = copyCatalogue();
    rmSync(copy.path('catalogue/sites/store-0007.yaml'));
    symlinkSync('../profiles/store-single.yaml', copy.path('catalogue/sites/store-0007.yaml'));
    expectError(await errorsOf(copy), 'sites/store-0007.yaml', 1, /is a symbolic link/);
  });

  it('refuses a symlinked directory instead of silently skipping the sites in it', async () => {
    copy = copyCatalogue();
    mkdirSync(copy.path('more-sites'));
    writeFileSync(copy.path('more-sites/store-0008.yaml'), readFileSync(copy.path('catalogue/sites/store-0007.yaml'), 'utf8').replace('name: store-0007', 'name: store-0008'));
    symlinkSync(copy.path('more-sites'), copy.path('catalogue/more'));
    expectError(await errorsOf(copy), 'catalogue/more', 1, /is a symbolic link to a directory/);
  });

  it('refuses a FIFO named like a catalogue file without opening it', async () => {
    copy = copyCatalogue();
    execFileSync('mkfifo', [copy.path('catalogue/sites/pipe.yaml')]);
    expectError(await errorsOf(copy), 'sites/pipe.yaml', 1, /is a FIFO \(named pipe\), not a regular file/);
  }, 20_000);

  it('refuses a catalogue file over the size limit, naming its path', async () => {
    copy = copyCatalogue();
    writeFileSync(copy.path('catalogue/sites/huge.yaml'), `# ${'x'.repeat(MAX_CATALOGUE_FILE_BYTES)}\n`);
    expectError(await errorsOf(copy), 'catalogue/sites/huge.yaml', 1, /file is \d+ bytes, over the 4 MiB limit for catalogue files/);
  });
});

describe.runIf(posix)('overlay and CA bundle paths are confined to the catalogue', () => {
  it('refuses /dev/urandom as an overlay at once, at the reference', async () => {
    copy = copyCatalogue();
    const line = pointNodeOverlayAt(copy, '/dev/urandom');
    expectError(await errorsOf(copy), 'sites/store-0412.yaml', line, /overlay file \/dev\/urandom is outside the catalogue: referenced files must be inside .*catalogue\/ or .*overlays\//);
  }, 20_000);

  it('refuses an overlay that is a FIFO without blocking on it', async () => {
    copy = copyCatalogue();
    rmSync(copy.path('overlays/node-cp1-extra-sans.yaml'));
    execFileSync('mkfifo', [copy.path('overlays/node-cp1-extra-sans.yaml')]);
    const line = lineOf(copy, 'catalogue/sites/store-0412.yaml', 'node-cp1-extra-sans.yaml');
    expectError(await errorsOf(copy), 'sites/store-0412.yaml', line, /overlay file \.\.\/\.\.\/overlays\/node-cp1-extra-sans\.yaml is a FIFO \(named pipe\), not a regular file/);
  }, 20_000);

  it('refuses an overlay path that leaves the catalogue, even to a readable regular file', async () => {
    copy = copyCatalogue();
    writeFileSync(copy.path('outside.yaml'), readFileSync(copy.path('overlays/node-cp1-extra-sans.yaml')));
    const line = pointNodeOverlayAt(copy, '../../outside.yaml');
    expectError(await errorsOf(copy), 'sites/store-0412.yaml', line, /overlay file \.\.\/\.\.\/outside\.yaml is outside the catalogue/);
  });

  it('refuses an overlay that is a symlink, even to another overlay beside it', async () => {
    copy = copyCatalogue();
    renameSync(copy.path('overlays/node-cp1-extra-sans.yaml'), copy.path('overlays/real.yaml'));
    symlinkSync('real.yaml', copy.path('overlays/node-cp1-extra-sans.yaml'));
    const line = lineOf(copy, 'catalogue/sites/store-0412.yaml', 'node-cp1-extra-sans.yaml');
    expectError(await errorsOf(copy), 'sites/store-0412.yaml', line, /overlay file .*node-cp1-extra-sans\.yaml is, or lies under, a symbolic link; symlinks in the catalogue are not followed/);
  });

  it('refuses an overlay under a symlinked directory inside the catalogue', async () => {
    copy = copyCatalogue();
    symlinkSync(copy.path('overlays'), copy.path('catalogue/linked-overlays'));
    const line = pointNodeOverlayAt(copy, '../linked-overlays/node-cp1-extra-sans.yaml');
    expectError(await errorsOf(copy), 'sites/store-0412.yaml', line, /is, or lies under, a symbolic link/);
  });

  it('refuses an overlay over the size limit', async () => {
    copy = copyCatalogue();
    copy.edit('overlays/node-cp1-extra-sans.yaml', (t) => `${t}# ${'x'.repeat(MAX_CATALOGUE_FILE_BYTES)}\n`);
    const line = lineOf(copy, 'catalogue/sites/store-0412.yaml', 'node-cp1-extra-sans.yaml');
    expectError(await errorsOf(copy), 'sites/store-0412.yaml', line, /overlay file \.\.\/\.\.\/overlays\/node-cp1-extra-sans\.yaml is \d+ bytes, over the 4 MiB limit/);
  });

  it('refuses a CA bundle outside the catalogue', async () => {
    copy = copyCatalogue();
    copy.edit('catalogue/fleet.yaml', (t) => t.replace('caBundle: pki/mirror-ca.pem', 'caBundle: /etc/ssl/certs/ca-certificates.crt'));
    const line = lineOf(copy, 'catalogue/fleet.yaml', 'caBundle:');
    expectError(await errorsOf(copy), 'catalogue/fleet.yaml', line, /CA bundle file \/etc\/ssl\/certs\/ca-certificates\.crt is outside the catalogue/);
  });

  it('still reads overlays beside the catalogue and the CA bundle inside it', async () => {
    copy = copyCatalogue();
    const { plans } = await planFleet(copy.catalogue);
    const cp1 = plans.find((p) => p.id === 'store-0412')!.nodes[0]!;
    expect(cp1.overlays.map((o) => o.level)).toEqual(['fleet', 'node']);
    expect(plans[0]!.registries.caBundle).toContain('BEGIN CERTIFICATE');
  });
});
