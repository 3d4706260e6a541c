// Bounded excerpts of user values for catalogue messages, on top of `excerpt` (JSON-quoted, cut
// at EXCERPT_MAX characters, control characters escaped so a value cannot forge output lines).

import { excerpt } from '../util/diagnostics.js';

export { excerpt };

/** `excerpt` without the quotes, for paths and tags shown bare: `../overlays/x.yaml`. */
export function bare(value: unknown, max?: number): string {
  return excerpt(value, max).slice(1, -1);
}

/** Names (each cut), at most `maxItems` of them: `a, b, c and 12 more`. */
export function excerptList(values: readonly string[], maxItems = 20): string {
  const shown = values.slice(0, maxItems).map((v) => bare(v));
  return values.length > maxItems ? `${shown.join(', ')} and ${values.length - maxItems} more` : shown.join(', ');
}

/** A parser's message, on one line, control characters replaced, at most `max` characters. */
export function plainMessage(message: string, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const line = message.split('\n', 1)[0]!.trim().replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
