// Progress of a long run (a fleet build, a verify over many sites) on stderr.
//
// On an interactive terminal: one status line redrawn in place (bar, N/M, percent, rate, ETA),
// at most every `redrawMs`; `log(line)` clears it, prints the line whole and draws it again, so
// worker lines and the bar never interleave. Everywhere else (a pipe, a file, CI logs): no
// control characters at all, a plain line at most every `intervalMs`, and a final line.
//
// Every write is one stream.write() of complete lines, and time comes only from `now()`, so a
// test drives it with a fake stream and a fake clock.

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  label: string;
  stream?: ProgressStream;
  /** Default: stream.isTTY. */
  isTTY?: boolean;
  /** Default: CI=true or CI=1 in the environment. CI logs get the plain form even on a pty. */
  ci?: boolean;
  /** Plain form: least time between two progress lines (default 10 s). */
  intervalMs?: number;
  /** Terminal form: least time between two redraws of the bar (default 100 ms: 10/s). */
  redrawMs?: number;
  /** Milliseconds, monotonic (default performance.now). */
  now?: () => number;
}

export interface Progress {
  /** `n` more items done; `detail` names the latest (shown after the figures). */
  tick(n?: number, detail?: string): void;
  /** A whole line of output that must not be mixed with the bar (printed as given). */
  log(line: string): void;
  /** The final line (with `summary`, when given); later ticks are ignored. */
  done(summary?: string): void;
}

const CLEAR_LINE = '\r\x1b[2K';
const BAR_WIDTH = 20;

/** "45s", "1m18s", "2h05m": seconds rounded up, for ETAs and elapsed times. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'unknown';
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(s / 3600);
  return `${h}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Items per second: one decimal, two below 1/s. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '0.0/s';
  return `${perSecond < 1 ? perSecond.toFixed(2) : perSecond.toFixed(1)}/s`;
}

/** A detail from outside (a site id, a file name) shown inside our own line: no control characters. */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream: ProgressStream = opts.stream ?? process.stderr;
  const ci = opts.ci ?? (process.env['CI'] === 'true' || process.env['CI'] === '1');
  const tty = (opts.isTTY ?? stream.isTTY === true) && !ci;
  const now = opts.now ?? (() => performance.now());
  const intervalMs = opts.intervalMs ?? 10_000;
  const redrawMs = opts.redrawMs ?? 100;
  const total = Math.max(0, Math.floor(opts.total));
  const label = printable(opts.label);
  const start = now();
  let count = 0;
  let detail = '';
  let finished = false;
  let lastDraw = -Infinity;
  let lastLine = start; // the plain form's first line comes one interval after the start

  const figures = (t: number): { pct: string; rate: string; eta: string; fraction: number } => {
    const fraction = total === 0 ? 1 : Math.min(1, count / total);
    const elapsed = (t - start) / 1000;
    const perSecond = elapsed > 0 ? count / elapsed : 0;
    const left = Math.max(0, total - count);
    const eta = left === 0 ? '0s' : perSecond > 0 ? formatDuration(left / perSecond) : 'unknown';
    return { pct: `${(fraction * 100).toFixed(1)}%`, rate: formatRate(perSecond), eta, fraction };
  };

  const barLine = (t: number): string => {
    const f = figures(t);
    const filled = Math.floor(f.fraction * BAR_WIDTH);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
    const line = `${label} ${bar} ${count}/${total} ${f.pct.padStart(6)}  ${f.rate}  ETA ${f.eta}${detail ? `  ${detail}` : ''}`;
    // never wider than the terminal: a wrapped line cannot be redrawn with \r
    const width = Math.max(20, (stream.columns ?? 80) - 1);
    return line.length > width ? line.slice(0, width) : line;
  };

  const plainLine = (t: number): string => {
    const f = figures(t);
    return `${label}: ${count}/${total} (${f.pct}), ${f.rate}, ETA ${f.eta}${detail ? ` (${detail})` : ''}\n`;
  };

  const draw = (t: number): void => {
    lastDraw = t;
    stream.write(`${CLEAR_LINE}${barLine(t)}`);
  };

  if (tty) draw(start);

  return {
    tick(n = 1, d?: string) {
      if (finished) return;
      const before = count;
      count += n;
      if (d !== undefined) detail = printable(d);
      const t = now();
      if (tty) {
        // the last item always shows, however soon after the previous redraw
        if (t - lastDraw >= redrawMs || (before < total && count >= total)) draw(t);
      } else if (t - lastLine >= intervalMs) {
        lastLine = t;
        stream.write(plainLine(t));
      }
    },
    log(line: string) {
      const text = line.endsWith('\n') ? line : `${line}\n`;
      if (!tty || finished) {
        stream.write(text);
        return;
      }
      const t = now();
      lastDraw = t;
      stream.write(`${CLEAR_LINE}${text}${barLine(t)}`);
    },
    done(summary?: string) {
      if (finished) return;
      finished = true;
      const t = now();
      const elapsed = (t - start) / 1000;
      const f = figures(t);
      const line = `${label}: ${count}/${total} (${f.pct}) in ${formatDuration(elapsed)}, ${f.rate}${summary ? `; ${printable(summary)}` : ''}\n`;
      stream.write(tty ? `${CLEAR_LINE}${line}` : line);
    },
  };
}
