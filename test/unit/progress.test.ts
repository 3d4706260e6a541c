// The progress display (src/util/progress.ts) with a fake stream and a fake clock: a redrawn
// bar on a terminal, plain throttled lines elsewhere, and log lines that always come out whole.
import { describe, expect, it } from 'vitest';
import { createProgress, formatDuration, formatRate, type ProgressOptions } from '../../src/util/progress.js';

function fake(opts: Partial<ProgressOptions> & { tty: boolean; columns?: number }) {
  const writes: string[] = [];
  let t = 0;
  const stream = { isTTY: opts.tty, columns: opts.columns ?? 120, write: (s: string) => void writes.push(s) };
  const p = createProgress({ total: 100, label: 'build', ci: false, ...opts, stream, now: () => t });
  return {
    p,
    writes,
    text: () => writes.join(''),
    at(ms: number) {
      t = ms;
    },
  };
}

/** What a terminal shows: \r returns to the line start, ESC[2K clears the line. */
function screen(output: string): string[] {
  const lines: string[] = [''];
  for (const part of output.split(/(\r\x1b\[2K|\r|\n)/)) {
    if (part === '\r\x1b[2K' || part === '\r') lines[lines.length - 1] = '';
    else if (part === '\n') lines.push('');
    else lines[lines.length - 1] += part;
  }
  return lines;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f]/;

describe('duration and rate formatting', () => {
  it('formats ETAs as s, m+s and h+m, rounding up', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(0.2)).toBe('1s');
    expect(formatDuration(59)).toBe('59s');
    expect(formatDuration(60)).toBe('1m00s');
    expect(formatDuration(78)).toBe('1m18s');
    expect(formatDuration(3599)).toBe('59m59s');
    expect(formatDuration(3600)).toBe('1h00m');
    expect(formatDuration(2 * 3600 + 5 * 60 + 7)).toBe('2h05m');
    expect(formatDuration(Infinity)).toBe('unknown');
    expect(formatDuration(NaN)).toBe('unknown');
  });

  it('formats rates with one decimal, two below one per second', () => {
    expect(formatRate(42.06)).toBe('42.1/s');
    expect(formatRate(0.25)).toBe('0.25/s');
    expect(formatRate(0)).toBe('0.0/s');
    expect(formatRate(Infinity)).toBe('0.0/s');
  });
});

describe('plain output (not a terminal, or CI)', () => {
  it('writes no control characters, a line at most every interval, and a final line', () => {
    const f = fake({ tty: false, total: 3400, intervalMs: 10_000 });
    for (let i = 1; i <= 3400; i++) {
      f.at(i * 23.8); // 42 per second
      f.p.tick(1, `store-${String(i).padStart(4, '0')}`);
    }
    f.p.done('3400 sites built');
    const out = f.text();
    expect(out).not.toMatch(CONTROL);
    const lines = out.trimEnd().split('\n');
    // 3400 items at 42/s take 81 s: lines at 10 s, 20 s, ... 80 s, then the final one
    expect(lines).toHaveLength(9);
    expect(lines[0]).toBe('build: 421/3400 (12.4%), 42.0/s, ETA 1m11s (store-0421)');
    expect(lines[8]).toBe('build: 3400/3400 (100.0%) in 1m21s, 42.0/s; 3400 sites built');
  });

  it('uses the plain form under CI even on a terminal', () => {
    const f = fake({ tty: true, ci: true, intervalMs: 1000 });
    f.at(1500);
    f.p.tick(10);
    f.p.log('store-0001: built');
    f.p.done();
    expect(f.text()).not.toMatch(CONTROL);
    expect(f.writes).toEqual(['build: 10/100 (10.0%), 6.7/s, ETA 14s\n', 'store-0001: built\n', 'build: 10/100 (10.0%) in 2s, 6.7/s\n']);
  });

  it('passes log lines through unchanged, adding only a missing newline', () => {
    const f = fake({ tty: false });
    f.p.log('edgeimg: store-0412: 3 nodes built');
    f.p.log('already ends\n');
    expect(f.writes).toEqual(['edgeimg: store-0412: 3 nodes built\n', 'already ends\n']);
  });

  it('keeps control characters in a detail out of its own lines', () => {
    const f = fake({ tty: false, intervalMs: 0 });
    f.at(1000);
    f.p.tick(1, 'evil\x1b[31m\nname');
    expect(f.text()).not.toMatch(CONTROL);
    expect(f.text()).toContain('(evil?[31m?name)');
  });

  it('says the ETA is unknown before any time has passed, never NaN or Infinity', () => {
    const f = fake({ tty: false, intervalMs: 0 });
    f.p.tick(0);
    f.p.tick(5);
    expect(f.text()).toContain('build: 5/100 (5.0%), 0.0/s, ETA unknown');
    expect(f.text()).not.toMatch(/NaN|Infinity/);
  });
});

describe('terminal output', () => {
  it('redraws one status line with bar, N/M, percent, rate and ETA', () => {
    const f = fake({ tty: true, total: 200 });
    f.at(10_000);
    f.p.tick(50, 'store-0050');
    const shown = screen(f.text());
    expect(shown).toHaveLength(1);
    expect(shown[0]).toBe('build [#####...............] 50/200  25.0%  5.0/s  ETA 30s  store-0050');
    expect(f.text()).not.toContain('\n');
  });

  it('redraws at most every 100 ms, but always shows the last item', () => {
    const f = fake({ tty: true, total: 1000 });
    const drawsAfterStart = f.writes.length;
    for (let i = 1; i <= 1000; i++) {
      f.at(i); // 1000 items in one second
      f.p.tick();
    }
    const redraws = f.writes.length - drawsAfterStart;
    expect(redraws).toBeLessThanOrEqual(11);
    expect(redraws).toBeGreaterThanOrEqual(9);
    expect(screen(f.text()).at(-1)).toContain('1000/1000 100.0%');
  });

  it('prints log lines whole, each in one write, with the bar cleared before and redrawn after', () => {
    const f = fake({ tty: true, total: 3 });
    f.at(200);
    f.p.tick(1, 'a');
    f.p.log('store-0001: 3 nodes built');
    f.at(250);
    f.p.tick(1, 'b'); // throttled: no redraw
    f.p.log('store-0002: 1 node built');
    f.at(400);
    f.p.tick(1, 'c');
    f.p.done('3 sites');
    for (const w of f.writes.filter((w) => w.includes('built'))) {
      expect(w.startsWith('\r\x1b[2K')).toBe(true);
      expect(w).toMatch(/^\r\x1b\[2Kstore-000\d: \d nodes? built\nbuild \[/);
    }
    expect(screen(f.text())).toEqual(['store-0001: 3 nodes built', 'store-0002: 1 node built', 'build: 3/3 (100.0%) in 1s, 7.5/s; 3 sites', '']);
  });

  it('clears the bar on done() and ignores ticks after it', () => {
    const f = fake({ tty: true, total: 2 });
    f.at(1000);
    f.p.tick(2);
    f.p.done();
    const n = f.writes.length;
    f.p.tick();
    f.p.done('again');
    expect(f.writes.length).toBe(n);
    expect(screen(f.text())).toEqual(['build: 2/2 (100.0%) in 1s, 2.0/s', '']);
  });

  it('never draws wider than the terminal, so \\r can redraw it', () => {
    const f = fake({ tty: true, columns: 40 });
    f.at(500);
    f.p.tick(1, 'a-very-long-site-identifier-that-would-wrap');
    for (const w of f.writes) expect(w.replace('\r\x1b[2K', '').length).toBeLessThanOrEqual(39);
  });

  it('handles a total of zero: full bar, 0/0, no NaN', () => {
    const f = fake({ tty: true, total: 0 });
    f.p.done();
    expect(f.text()).not.toMatch(/NaN|Infinity/);
    expect(f.writes[0]).toContain('[####################] 0/0 100.0%');
    expect(screen(f.text())).toEqual(['build: 0/0 (100.0%) in 0s, 0.0/s', '']);
    const g = fake({ tty: false, total: 0 });
    g.p.done('nothing to build');
    expect(g.writes).toEqual(['build: 0/0 (100.0%) in 0s, 0.0/s; nothing to build\n']);
  });
});
