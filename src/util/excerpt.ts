// User values quoted in diagnostics are cut to a bounded excerpt, so a 4 MiB scalar (or a
// value with control characters) can neither flood the output nor forge extra
// `FILE:LINE:COL:` lines on a terminal or in CI logs.

/** Characters of a user value a message shows before cutting it with an ellipsis. */
export const EXCERPT_CHARS = 80;

/** Cut `s` to `max` UTF-16 units without splitting a surrogate pair. */
function cut(s: string, max: number): { text: string; cut: boolean } {
  if (s.length <= max) return { text: s, cut: false };
  let end = max;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // a lone high surrogate would print as garbage
  return { text: s.slice(0, end), cut: true };
}

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Control characters (newlines, ESC, C1 controls such as CSI, …) escaped, so a value stays on one line. */
function escapeControls(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) => NAMED[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * A user string as a JSON-style quoted string, at most EXCERPT_CHARS characters of it followed by
 * "…" when it was longer: `"abc"`, `"aaaa…" (4194304 characters)`.
 */
export function quote(value: unknown, max = EXCERPT_CHARS): string {
  if (typeof value !== 'string') return excerpt(value, max); // numbers, objects: their JSON, cut
  const text = value;
  const c = cut(text, max);
  const inner = escapeControls(JSON.stringify(c.text).slice(1, -1)); // JSON leaves DEL and C1 controls as they are
  return c.cut ? `"${inner}…" (${text.length} characters)` : `"${inner}"`;
}

/** Like `quote`, without the quotes: for paths and names shown bare (control characters escaped). */
export function excerpt(value: unknown, max = EXCERPT_CHARS): string {
  const text = asText(value);
  const c = cut(text, max);
  return c.cut ? `${escapeControls(c.text)}… (${text.length} characters)` : escapeControls(c.text);
}

/** A list of user values (names), at most `maxItems` of them, each cut: `a, b, c and 12 more`. */
export function excerptList(values: readonly string[], maxItems = 20): string {
  const shown = values.slice(0, maxItems).map((v) => excerpt(v));
  return values.length > maxItems ? `${shown.join(', ')} and ${values.length - maxItems} more` : shown.join(', ');
}
