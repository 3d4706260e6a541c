// JSON for digests of parsed YAML values: JSON.stringify would write NaN, ±Infinity and null
// alike (and -0 as 0), and fails on bigints; these are kept apart so that two values a
// consumer reads differently never share a digest.

/** A JSON.stringify replacer keeping apart NaN, ±Infinity, -0 and bigints. */
export function exactJsonReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return { $number: Object.is(v, -0) ? '-0' : String(v) };
  return v;
}

/** JSON of a parsed value, key order as parsed (an order change is a change: renderers keep it). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, exactJsonReplacer);
}
