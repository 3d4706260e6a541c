import { readFileSync } from 'node:fs';
import { packagePath } from './util/paths.js';

let cached: { name: string; version: string } | undefined;

/** The generator recorded in manifests: this package's name and version. */
export function generator(): { name: string; version: string } {
  if (!cached) {
    const pkg = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { name: string; version: string };
    cached = { name: pkg.name, version: pkg.version };
  }
  return cached;
}
