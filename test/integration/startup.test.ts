// The built CLI starts from its bundle and V8 code cache (scripts/bundle.ts, docs/decisions.md
// "Start-up"), and the bundle behaves as the modules tsc wrote: same output, same exit codes.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { copyCatalogue, repoRoot } from '../helpers/catalogue.js';

const bundle = join(repoRoot, 'dist', 'edgeimg.cjs');
const built = existsSync(bundle) && existsSync(join(repoRoot, 'dist', '.code-cache'));
if (!built) {
  if (process.env.CI) throw new Error('dist/edgeimg.cjs or its code cache missing: run `npm run build` (make test does)');
  console.warn('\n*** SKIPPING start-up tests: the CLI bundle is not built (run `npm run build` or `make test`) ***\n');
}

const bin = join(repoRoot, 'bin', 'edgeimg.js');
const modules = pathToFileURL(join(repoRoot, 'dist', 'cli', 'main.js')).href;

/** The CLI as bin/edgeimg.js runs it (the bundle), and as the unbundled modules run it. */
async function both(args: string[], cwd: string): Promise<Array<{ exitCode: number | undefined; stdout: string; stderr: string }>> {
  const viaBundle = await execa(process.execPath, [bin, ...args], { cwd, reject: false });
  const viaModules = await execa(process.execPath, ['--input-type=module', '-e', `const { main } = await import(${JSON.stringify(modules)}); process.exitCode = await main(${JSON.stringify(args)});`], { cwd, reject: false });
  return [viaBundle, viaModules].map((r) => ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }));
}

describe.runIf(built)('the built CLI', () => {
  const copies = [copyCatalogue(), copyCatalogue()];
  afterAll(() => copies.forEach((c) => c.cleanup()));

  it('starts from the bundle with its code cache accepted by this node', async () => {
    const codeCache = pathToFileURL(join(repoRoot, 'dist', 'util', 'code-cache.js')).href;
    const r = await execa(process.execPath, [
      '--input-type=module',
      '-e',
      `import { requireWithCodeCache, codeCacheReport } from ${JSON.stringify(codeCache)};
       const { main } = requireWithCodeCache(${JSON.stringify(bundle)});
       await main(['validate', '--catalogue', ${JSON.stringify(join(repoRoot, 'catalogue'))}], { out() {}, err() {} });
       console.log(JSON.stringify(codeCacheReport()));`,
    ]);
    const report = JSON.parse(r.stdout) as Array<{ file: string; cached: boolean }>;
    expect(report.find((f) => f.file === bundle)).toEqual({ file: bundle, cached: true });
    // the precompiled validators validate used came from their caches too
    expect(report.filter((f) => f.file.includes(join('dist', 'precompiled'))).every((f) => f.cached)).toBe(true);
    expect(report.length).toBeGreaterThan(3);
  });

  it('prints and exits as the unbundled modules do', async () => {
    const [catalogueTypo, overlayTypo] = copies as [ReturnType<typeof copyCatalogue>, ReturnType<typeof copyCatalogue>];
    catalogueTypo.edit('catalogue/sites/store-0412.yaml', (t) => t.replace('  subnet:', '  subnett:'));
    overlayTypo.edit('overlays/site-kairos-journald.yaml', (t) => t.replace('        - path: /etc', '        - paht: /etc'));
    for (const copy of copies) {
      for (const args of [['--help'], ['--version'], ['build', '--help'], ['validate'], ['validate', '--json'], ['nosuch']]) {
        const [a, b] = await both(args, copy.root);
        expect(a, args.join(' ')).toEqual(b);
      }
    }
    const [c] = await both(['validate'], catalogueTypo.root);
    expect(c!.exitCode).toBe(1);
    expect(c!.stderr).toMatch(/^catalogue\/sites\/store-0412\.yaml:9:3: unknown key "subnett" in spec \(did you mean "subnet"\?\)$/m);
    const [o] = await both(['validate'], overlayTypo.root);
    expect(o!.exitCode).toBe(1);
    expect(o!.stderr).toMatch(/^overlays\/site-kairos-journald\.yaml:11:11: .*unknown key "paht" in write_files\[0\] \(did you mean "path"\?\)/m);
  });
});
