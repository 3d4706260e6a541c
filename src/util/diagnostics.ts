// Diagnostics point back to the catalogue file, line and column that caused them, so a
// reviewer can jump straight from CI output to the offending line.

export interface SourcePos {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
}

export interface Diagnostic extends SourcePos {
  message: string;
  /** Unset means error. Warnings fail only in strict mode (`--strict`), as Butane's do. */
  severity?: 'warning';
}

/** "1 node", "2 nodes": a count with its noun. */
export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}

/** Longest excerpt of a user-supplied value a message may quote. */
export const EXCERPT_MAX = 80;

/** A value as a message may quote it: JSON-quoted, cut at EXCERPT_MAX characters. */
export function excerpt(value: unknown, max = EXCERPT_MAX): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/**
 * A line from outside (a guest console) as a message may quote it: shapes of secret material
 * (bootstrap-style tokens, long base64 runs as in PEM bodies and base64 secrets) masked, and
 * cut to EXCERPT_MAX characters.
 */
export function redactedExcerpt(line: string, max = EXCERPT_MAX): string {
  const masked = line
    .trim()
    .replace(/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g, '[token]')
    .replace(/[A-Za-z0-9+/=_-]{32,}/g, '[redacted]');
  return masked.length > max ? `${masked.slice(0, max)}…` : masked;
}

/**
 * Where a YAML parser failed, without its message: the `yaml` library's messages carry a code
 * frame quoting the source line, and in a secret artifact that line can be a token or a key.
 */
export function yamlErrorWhere(err: unknown): string {
  const e = err as { linePos?: Array<{ line: number; col: number }>; code?: string };
  const at = e?.linePos?.[0];
  return `${at ? `line ${at.line}, column ${at.col}` : 'unknown position'}${e?.code ? ` (${e.code})` : ''}`;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.severity === 'warning' ? 'warning: ' : ''}${d.message}`;
}

/** Strict mode: every warning becomes an error, its message saying why it fails. */
export function strictErrors(warnings: readonly Diagnostic[]): Diagnostic[] {
  return warnings.map(({ severity: _s, ...d }) => ({ ...d, message: `${d.message} (an error in strict mode)` }));
}

export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return [...ds].sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.message.localeCompare(b.message),
  );
}

/** Thrown for bad user input (catalogue, overlays): exit code 1, never a stack trace. */
export class CatalogueError extends Error {
  readonly diagnostics: Diagnostic[];
  /** What the failed run did write anyway (e.g. new site secrets), for the closing line. */
  readonly wrote?: string;
  constructor(diagnostics: Diagnostic[], wrote?: string) {
    const sorted = sortDiagnostics(diagnostics);
    super(sorted.map(formatDiagnostic).join('\n'));
    this.name = 'CatalogueError';
    this.diagnostics = sorted;
    if (wrote !== undefined) this.wrote = wrote;
  }
}

/** Thrown when a host tool or the environment is missing: exit code 3. */
export class EnvironmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvironmentError';
  }
}

/** Thrown for command-line misuse: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A verification check failed: exit code 1. */
export class VerifyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerifyError';
  }
}
