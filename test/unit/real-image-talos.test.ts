// The Talos console judge against synthetic transcripts (test/fixtures/transcripts/talos-*.log,
// written from the log formats in siderolabs/talos; see docs/decisions-real-images.md).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { judgeTalosTranscript, parseTalosSources, TalosTranscriptJudge } from '../../src/verify/profiles/talos.js';

// the fixtures open with '#' header lines (what they are, where the formats come from)
const fixture = (name: string): string[] =>
  readFileSync(new URL(`../fixtures/transcripts/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('#'));

describe('judgeTalosTranscript', () => {
  it('passes when the config is loaded from nocloud (structured line, ANSI noise around it)', () => {
    const v = judgeTalosTranscript(fixture('talos-pass-nocloud.log'));
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/nocloud seed \(sources: nocloud\)/);
  });

  it('passes on the plain (logfmt) form with CRLF line ends', () => {
    const v = judgeTalosTranscript(fixture('talos-pass-plain.log'));
    expect(v).toEqual({ status: 'pass', reason: expect.stringMatching(/sources: nocloud/) });
  });

  it('fails when Talos enters maintenance mode', () => {
    const v = judgeTalosTranscript(fixture('talos-maintenance.log'));
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/maintenance mode/);
  });

  it('fails when the user-data from the seed does not load', () => {
    const v = judgeTalosTranscript(fixture('talos-nocloud-invalid.log'));
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/could not parse the user-data/);
    expect(v.reason).toMatch(/failed to load config via platform nocloud/);
  });

  it('does NOT pass a config loaded from another source (metal-iso)', () => {
    const v = judgeTalosTranscript(fixture('talos-metal-iso.log'));
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/from metal-iso, not from the nocloud seed/);
  });

  it('is pending while the config has not been loaded, and says how far the seed got', () => {
    const v = judgeTalosTranscript(fixture('talos-pending.log'));
    expect(v.status).toBe('pending');
    expect(v.reason).toMatch(/read user-data from the seed at \/dev\/sr1/);
    expect(judgeTalosTranscript([]).status).toBe('pending');
  });

  it('the first decisive line wins: a later maintenance line does not undo a nocloud load, and vice versa', () => {
    const pass = fixture('talos-pass-nocloud.log');
    const maint = fixture('talos-maintenance.log');
    expect(judgeTalosTranscript([...pass, ...maint]).status).toBe('pass');
    expect(judgeTalosTranscript([...maint, ...pass]).status).toBe('fail');
    // a config from STATE (an already installed disk) is not the seed either
    expect(judgeTalosTranscript(['[talos] machine config loaded successfully {"sources": ["state"]}']).status).toBe('fail');
  });

  it('does not pass a config-load line that names no sources', () => {
    const v = judgeTalosTranscript(['[   5.4] [talos] machine config loaded successfully']);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/names no sources/);
  });

  it('the incremental judge agrees with the whole-transcript judge', () => {
    const j = new TalosTranscriptJudge();
    const lines = fixture('talos-pass-nocloud.log');
    const statuses = lines.map((l) => j.push(l).status);
    expect(statuses.indexOf('pass')).toBe(lines.findIndex((l) => l.includes('machine config loaded successfully')));
    expect(j.current()).toEqual(judgeTalosTranscript(lines));
  });
});

describe('parseTalosSources', () => {
  it.each([
    ['machine config loaded successfully {"component": "controller-runtime", "sources": ["nocloud"]}', ['nocloud']],
    ['machine config loaded successfully {"sources": ["state", "nocloud"], "x": 1}', ['state', 'nocloud']],
    ['machine config loaded successfully sources=[nocloud]', ['nocloud']],
    ['machine config loaded successfully sources=nocloud,state', ['nocloud', 'state']],
    ['machine config loaded successfully\tsources: [metal-iso]', ['metal-iso']],
    ['machine config loaded successfully {"sources": []}', []],
    ['machine config loaded successfully', null],
  ])('%s', (line, want) => {
    expect(parseTalosSources(line)).toEqual(want);
  });
});
