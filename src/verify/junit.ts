// JUnit XML for CI dashboards: one testsuite per site, one testcase per check.

import type { CheckResult } from './static.js';

export interface SuiteReport {
  site: string;
  results: CheckResult[];
  durationMs: number;
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export function junitXml(suites: SuiteReport[]): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = suites.reduce((n, s) => n + s.results.length, 0);
  const failures = suites.reduce((n, s) => n + s.results.filter((r) => !r.ok).length, 0);
  lines.push(`<testsuites name="edgeimg verify" tests="${total}" failures="${failures}">`);
  for (const s of suites) {
    const f = s.results.filter((r) => !r.ok).length;
    lines.push(`  <testsuite name="${esc(s.site)}" tests="${s.results.length}" failures="${f}" time="${(s.durationMs / 1000).toFixed(3)}">`);
    s.results.forEach((r, i) => {
      const name = `${r.node ?? 'site'}: ${r.check} #${i + 1}`;
      const classname = `${s.site}.${r.node ?? 'site'}`;
      if (r.ok) lines.push(`    <testcase classname="${esc(classname)}" name="${esc(name)}"><system-out>${esc(r.message)}</system-out></testcase>`);
      else {
        lines.push(`    <testcase classname="${esc(classname)}" name="${esc(name)}">`);
        lines.push(`      <failure message="${esc(r.message)}">${esc(r.message)}</failure>`);
        if (r.log) lines.push(`      <system-out>serial log: ${esc(r.log)}</system-out>`);
        lines.push('    </testcase>');
      }
    });
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}
