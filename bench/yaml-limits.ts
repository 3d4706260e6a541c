// Catalogue parsing under hostile sizes: how long the YAML loader (parse, duplicate-key check,
// position index, schema) takes on a mapping of 40,000 keys and on other shapes that used to be
// quadratic. A benchmark, not a test: nothing here asserts; it prints one `bench:` line per case.
//
//   npm run bench:yaml            (BENCH_YAML_KEYS=40000 BENCH_YAML_ROUNDS=3 by default)

import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYaml } from '../src/catalogue/yaml.js';
import { validateDocument } from '../src/catalogue/schema.js';
import { planFleet } from '../src/catalogue/index.js';
import { CatalogueError } from '../src/util/diagnostics.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const KEYS = Number(process.env.BENCH_YAML_KEYS ?? 40000);
const ROUNDS = Number(process.env.BENCH_YAML_ROUNDS ?? 3);

const log = (s: string): void => void process.stdout.write(`bench: ${s}\n`);

function siteWithLabels(n: number, name = (i: number): string => `k${i}`): string {
  const rows = ['apiVersion: edgeimg.dev/v1alpha1', 'kind: Site', 'metadata:', '  name: store-9999', '  labels:'];
  for (let i = 0; i < n; i++) rows.push(`    ${name(i)}: v`);
  rows.push('spec:', '  profile: store-single', '  subnet: 10.99.99.0/24', '  nodes:', '    - { name: cp-1, mac: "02:00:00:99:99:11" }', '');
  return rows.join('\n');
}

/** Best of ROUNDS, in ms. */
function time(fn: () => unknown): { ms: number; result: unknown } {
  let best = Infinity;
  let result: unknown;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    result = fn();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, result };
}

function parseCase(label: string, text: string): void {
  const { ms, result } = time(() => {
    const r = parseYaml('bench.yaml', text);
    const schema = r.docs.flatMap((d) => validateDocument(d));
    return { docs: r.docs.length, errors: r.diagnostics.length + schema.length };
  });
  const r = result as { docs: number; errors: number };
  log(`${label}: ${ms.toFixed(0)} ms (${(text.length / 1024).toFixed(0)} KiB, ${r.docs} documents, ${r.errors} errors)`);
}

// 1. One mapping of KEYS keys: the `yaml` library's uniqueKeys check was quadratic here.
parseCase(`parse+schema ${KEYS}-key mapping`, siteWithLabels(KEYS));
// 2. The same with a duplicate as the very last key: found in the same pass.
parseCase(`parse+schema ${KEYS}-key mapping, last key duplicated`, `${siteWithLabels(KEYS).replace('\nspec:', `\n    k0: again\nspec:`)}`);
// 3. KEYS invalid label names: every error once, quoting the key, never the whole mapping.
parseCase(`parse+schema ${KEYS} invalid label names`, siteWithLabels(KEYS, (i) => `-k${i}`));
// 4. An explicit 1,000-character key over KEYS children: positions are a tree, not full paths.
parseCase(
  `parse 1000-char key over ${KEYS} children`,
  ['merge:', `  ? ${'k'.repeat(1000)}`, '  :', ...Array.from({ length: KEYS }, (_, i) => `    c${i}: 1`), ''].join('\n'),
);
// 5. The largest file the loader accepts: 4 MiB of short keys.
{
  const rows = ['big:'];
  let size = 5;
  for (let i = 0; size < 4 * 1024 * 1024 - 32; i++) {
    const row = `  k${i}: v`;
    rows.push(row);
    size += row.length + 1;
  }
  parseCase('parse+schema 4 MiB mapping', `${rows.join('\n')}\n`);
}

// 6. End to end: the example catalogue plus one site of KEYS labels, loaded, resolved, checked.
{
  const dir = mkdtempSync(join(tmpdir(), 'edgeimg-bench-yaml-'));
  try {
    cpSync(join(root, 'catalogue'), join(dir, 'catalogue'), { recursive: true });
    cpSync(join(root, 'overlays'), join(dir, 'overlays'), { recursive: true });
    writeFileSync(join(dir, 'catalogue', 'sites', 'store-9999.yaml'), siteWithLabels(KEYS));
    let best = Infinity;
    let outcome = '';
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now();
      try {
        const fleet = await planFleet(join(dir, 'catalogue'));
        outcome = `${fleet.plans.length} sites valid`;
      } catch (err) {
        outcome = err instanceof CatalogueError ? `${err.diagnostics.length} errors` : String(err);
      }
      best = Math.min(best, performance.now() - t0);
    }
    log(`planFleet example catalogue + ${KEYS}-label site: ${best.toFixed(0)} ms (${outcome})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
