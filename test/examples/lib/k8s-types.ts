// Unknown fields in a Kubernetes object, found by the TypeScript compiler against the
// kubernetes-models interfaces (generated from the same upstream OpenAPI schema as its
// validators). The schema's validators accept unknown fields, as the upstream schema does; the
// API server rejects them when the client asks for strict field validation, as kubectl does by
// default, so a misspelt field would only show at apply time. An object literal assigned to the interface type gets
// TypeScript's excess-property check at every level.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * Type errors of each of `values` as a `typeName` from `module` (e.g. IJob from
 * 'kubernetes-models/batch/v1/Job'), one list per value, one line per error. One program checks
 * them all (a program costs seconds; most of it is the models' declarations).
 */
export function typeErrors(values: unknown[], module: string, typeName: string): string[][] {
  // a file that does not exist, beside this one, so that node_modules resolves from here
  const fileName = join(HERE, '__k8s_object_check__.ts');
  const starts: number[] = [];
  let source = `import type { ${typeName} } from '${module}';\n`;
  for (const [i, v] of values.entries()) {
    starts.push(source.split('\n').length - 1); // 0-based line of this declaration
    source += `export const value${i}: ${typeName} = ${JSON.stringify(v, null, 2)};\n`;
  }
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) =>
    name === fileName ? ts.createSourceFile(name, source, languageVersion, true) : getSourceFile(name, languageVersion, onError, shouldCreate);
  host.fileExists = (name) => name === fileName || fileExists(name);
  host.readFile = (name) => (name === fileName ? source : readFile(name));
  const program = ts.createProgram([fileName], options, host);
  const out: string[][] = values.map(() => []);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (!d.file || d.start === undefined || d.file.fileName !== fileName) throw new Error(`type check: ${message}`);
    const line = d.file.getLineAndCharacterOfPosition(d.start).line;
    let i = starts.length - 1;
    while (i > 0 && starts[i]! > line) i--;
    out[i]!.push(`line ${line - starts[i]! + 1}: ${message}`);
  }
  return out;
}
