// A tiny emitter that writes exactly what Go's gopkg.in/yaml.v3 (v3.0.1) `yaml.Marshal` writes,
// for the subset of values an Image Factory schematic holds: block mappings and sequences,
// strings, and pre-formatted plain scalars (integers, booleans). The schematic ID is the sha256
// of these bytes, so "looks the same to a YAML parser" is not enough: indentation, quoting
// style and key order must match byte for byte.
//
// Facts this follows (yaml.v3 encode.go, emitterc.go, resolve.go, sorter.go):
// - indent 4; no line wrapping (yaml.v3 initialises best_width to -1);
// - a node's indent is 4 * floor((parent + 4) / 4), except the first node inside a `- ` item,
//   which is indented by 2 so that it starts right after the indicator;
// - empty mappings and sequences are written in flow style: `{}`, `[]`;
// - a string is plain unless it would resolve to another type (null, bool, int, float,
//   timestamp), is a YAML 1.1 bool (`yes`, `on`, ...) or a base-60 float; then double-quoted;
// - strings with a newline use the literal block style (`|`, `|-`);
// - a plain scalar the emitter cannot write plain (leading indicator, `: `, ` #`, leading or
//   trailing space, ...) falls back to single quotes, or double quotes if those cannot hold it.
// Anything outside the subset throws instead of guessing: a wrong byte means a wrong ID.

export type GoNode =
  | { t: 'map'; entries: Array<[string, GoNode]> }
  | { t: 'seq'; items: GoNode[] }
  | { t: 'str'; v: string }
  | { t: 'raw'; v: string }; // already formatted plain scalar: 10, true, 1.5e+06, null

const BEST_INDENT = 4;

export class GoYamlUnsupported extends Error {}

/** yaml.Marshal of a document whose root is `root`. */
export function marshalGoYaml(root: GoNode): string {
  if (root.t === 'map') return root.entries.length === 0 ? '{}\n' : blockMap(root.entries, 0, null);
  if (root.t === 'seq') return root.items.length === 0 ? '[]\n' : blockSeq(root.items, 0, null);
  return scalar(root, 0, false) + '\n';
}

function childIndent(indent: number): number {
  return BEST_INDENT * Math.floor((indent + BEST_INDENT) / BEST_INDENT);
}

function isEmptyCollection(n: GoNode): string | null {
  if (n.t === 'map' && n.entries.length === 0) return '{}';
  if (n.t === 'seq' && n.items.length === 0) return '[]';
  return null;
}

function blockMap(entries: Array<[string, GoNode]>, indent: number, lead: string | null): string {
  let out = '';
  entries.forEach(([key, value], i) => {
    out += i === 0 && lead !== null ? lead : ' '.repeat(indent);
    out += keyScalar(key) + ':';
    const empty = isEmptyCollection(value);
    if (empty) out += ' ' + empty + '\n';
    else if (value.t === 'map') out += '\n' + blockMap(value.entries, childIndent(indent), null);
    else if (value.t === 'seq') out += '\n' + blockSeq(value.items, childIndent(indent), null);
    else out += ' ' + scalar(value, childIndent(indent), false) + '\n';
  });
  return out;
}

function blockSeq(items: GoNode[], indent: number, lead: string | null): string {
  let out = '';
  items.forEach((item, i) => {
    const prefix = (i === 0 && lead !== null ? lead : ' '.repeat(indent)) + '- ';
    const empty = isEmptyCollection(item);
    if (empty) out += prefix + empty + '\n';
    else if (item.t === 'map') out += blockMap(item.entries, indent + 2, prefix);
    else if (item.t === 'seq') out += blockSeq(item.items, indent + 2, prefix);
    else out += prefix + scalar(item, indent + 2, false) + '\n';
  });
  return out;
}

function keyScalar(key: string): string {
  // A key is a "simple key" only if it is single-line and at most 128 bytes; otherwise yaml.v3
  // writes the `? key` form, which a schematic never needs.
  if (/[\n\r\u0085\u2028\u2029]/.test(key) || Buffer.byteLength(key) > 128) {
    throw new GoYamlUnsupported(`map key ${JSON.stringify(key)} needs the complex-key form`);
  }
  return scalar({ t: 'str', v: key }, 0, true);
}

function scalar(node: GoNode, indent: number, simpleKey: boolean): string {
  if (node.t === 'raw') return node.v;
  if (node.t !== 'str') throw new GoYamlUnsupported('collection where a scalar was expected');
  const s = node.v;
  if (/[\r\u0085\u2028\u2029]/.test(s)) throw new GoYamlUnsupported('line breaks other than \\n in a string');

  type Style = 'plain' | 'single' | 'double' | 'literal';
  // encoder.stringv
  let style: Style = s.includes('\n') ? 'literal' : canUsePlain(s) ? 'plain' : 'double';
  // emitter.select_scalar_style, block context (flow_level == 0)
  const a = analyzeScalar(s);
  if (simpleKey && a.multiline) style = 'double';
  if (style === 'plain') {
    if (!a.blockPlainAllowed) style = 'single';
    if (s.length === 0 && simpleKey) style = 'single';
  }
  if (style === 'single' && !a.singleQuotedAllowed) style = 'double';
  if (style === 'literal' && (!a.blockAllowed || simpleKey)) style = 'double';

  switch (style) {
    case 'plain':
      return s;
    case 'single':
      return `'${s.replaceAll("'", "''")}'`;
    case 'double':
      return doubleQuoted(s);
    case 'literal':
      return literal(s, indent);
  }
}

/** encoder.stringv: plain only if the text reads back as the same string. */
function canUsePlain(s: string): boolean {
  return resolvesToString(s) && !isBase60Float(s) && !isOldBool(s);
}

const OLD_BOOLS = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF']);
export function isOldBool(s: string): boolean {
  return OLD_BOOLS.has(s);
}

export function isBase60Float(s: string): boolean {
  if (s === '') return false;
  const c = s[0]!;
  if (!(c === '+' || c === '-' || (c >= '0' && c <= '9')) || !s.includes(':')) return false;
  return /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/.test(s);
}

// resolve.go: strings that an untagged plain scalar would turn into something else.
const RESOLVE_MAP = new Set([
  'true', 'True', 'TRUE', 'false', 'False', 'FALSE',
  '', '~', 'null', 'Null', 'NULL',
  '.nan', '.NaN', '.NAN', '.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF', '-.inf', '-.Inf', '-.INF',
  '<<',
]);
const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

/** resolve("", s) returns !!str. */
export function resolvesToString(s: string): boolean {
  if (s === '') return false; // !!null
  const c = s[0]!;
  let hint: 'S' | 'D' | 'M' | '.' | null = null;
  if (c === '+' || c === '-') hint = 'S';
  else if (c >= '0' && c <= '9') hint = 'D';
  else if ('yYnNtTfFoO~'.includes(c)) hint = 'M';
  else if (c === '.') hint = '.';
  if (hint === null) return true; // also why "<<" stays a string in v3.0.1
  if (RESOLVE_MAP.has(s)) return false;
  if (hint === 'M') return true;
  if (hint === '.') return !/^\.[0-9]+([eE][-+]?[0-9]+)?$/.test(s);
  if (isTimestamp(s)) return false;
  const plain = s.replaceAll('_', '');
  if (goParsesInt(plain)) return false;
  if (YAML_STYLE_FLOAT.test(plain) && Number.isFinite(Number(plain))) return false;
  return true;
}

function goParsesInt(s: string): boolean {
  // strconv.ParseInt(s, 0, 64), then strconv.ParseUint(s, 0, 64)
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return false;
  const body = m[2]!;
  let v: bigint;
  if (/^0[oO]/.test(body)) v = BigInt('0o' + body.slice(2));
  else if (/^0[0-7]+$/.test(body)) v = BigInt('0o' + body.slice(1));
  else v = BigInt(body);
  if (m[1] === '-') v = -v;
  const fitsInt64 = v >= -(2n ** 63n) && v < 2n ** 63n;
  const fitsUint64 = m[1] === '' && v >= 0n && v < 2n ** 64n;
  return fitsInt64 || fitsUint64;
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** resolve.go parseTimestamp: the four layouts yaml.v3 accepts. */
function isTimestamp(s: string): boolean {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:([Tt ])(\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(s);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return false;
  if (m[4] === undefined) return true;
  if (Number(m[5]) > 23 || Number(m[6]) > 59 || Number(m[7]) > 59) return false;
  // "2006-1-2T15:4:5.999999999Z07:00" needs a zone; "2006-1-2 15:4:5.999999999" has none.
  return m[4] === ' ' ? m[9] === undefined : m[9] !== undefined;
}

const isBreak = (c: string): boolean => c === '\n' || c === '\r' || c === '\u0085' || c === '\u2028' || c === '\u2029';
const isBlankz = (c: string): boolean => c === ' ' || c === '\t' || c === '\0' || isBreak(c);

function isPrintable(c: string): boolean {
  const cp = c.codePointAt(0)!;
  return (
    cp === 0x0a ||
    (cp >= 0x20 && cp <= 0x7e) ||
    (cp >= 0xa0 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd && cp !== 0xfeff)
  );
}

interface ScalarAnalysis {
  multiline: boolean;
  blockPlainAllowed: boolean;
  singleQuotedAllowed: boolean;
  blockAllowed: boolean;
}

/** emitterc.go yaml_emitter_analyze_scalar (the block-context half of it). */
export function analyzeScalar(s: string): ScalarAnalysis {
  if (s.length === 0) return { multiline: false, blockPlainAllowed: true, singleQuotedAllowed: true, blockAllowed: false };
  let blockIndicators = false;
  let lineBreaks = false;
  let special = false;
  let tabs = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let previousSpace = false;
  let previousBreak = false;
  if (s.startsWith('---') || s.startsWith('...')) blockIndicators = true;

  const cps = Array.from(s);
  let precededByWhitespace = true;
  cps.forEach((c, i) => {
    const next = cps[i + 1];
    const followedByWhitespace = next === undefined || next === ' ' || next === '\t';
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(c)) blockIndicators = true;
      else if ((c === '?' || c === ':' || c === '-') && followedByWhitespace) blockIndicators = true;
    } else if ((c === ':' && followedByWhitespace) || (c === '#' && precededByWhitespace)) {
      blockIndicators = true;
    }
    if (c === '\t') tabs = true;
    else if (!isPrintable(c)) special = true;
    const last = i === cps.length - 1;
    if (c === ' ') {
      if (i === 0) leadingSpace = true;
      if (last) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreak(c)) {
      lineBreaks = true;
      if (i === 0) leadingBreak = true;
      if (last) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlankz(c);
  });

  let blockPlainAllowed = true;
  let singleQuotedAllowed = true;
  let blockAllowed = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) blockPlainAllowed = false;
  if (trailingSpace) blockAllowed = false;
  if (breakSpace) {
    blockPlainAllowed = false;
    singleQuotedAllowed = false;
  }
  if (spaceBreak || tabs || special) {
    blockPlainAllowed = false;
    singleQuotedAllowed = false;
  }
  if (spaceBreak || special) blockAllowed = false;
  if (lineBreaks) blockPlainAllowed = false;
  if (blockIndicators) blockPlainAllowed = false;
  return { multiline: lineBreaks, blockPlainAllowed, singleQuotedAllowed, blockAllowed };
}

const ESCAPES: Record<number, string> = {
  0x00: '0', 0x07: 'a', 0x08: 'b', 0x09: 't', 0x0a: 'n', 0x0b: 'v', 0x0c: 'f', 0x0d: 'r',
  0x1b: 'e', 0x22: '"', 0x5c: '\\', 0x85: 'N', 0xa0: '_', 0x2028: 'L', 0x2029: 'P',
};

/** emitterc.go yaml_emitter_write_double_quoted_scalar (unicode output, no wrapping). */
function doubleQuoted(s: string): string {
  let out = '"';
  for (const c of s) {
    const cp = c.codePointAt(0)!;
    if (!isPrintable(c) || cp === 0xfeff || isBreak(c) || c === '"' || c === '\\') {
      const short = ESCAPES[cp];
      if (short !== undefined) out += '\\' + short;
      else if (cp <= 0xff) out += '\\x' + cp.toString(16).toUpperCase().padStart(2, '0');
      else if (cp <= 0xffff) out += '\\u' + cp.toString(16).toUpperCase().padStart(4, '0');
      else out += '\\U' + cp.toString(16).toUpperCase().padStart(8, '0');
    } else {
      out += c;
    }
  }
  return out + '"';
}

/** emitterc.go yaml_emitter_write_literal_scalar with its block-scalar hints. */
function literal(s: string, indent: number): string {
  // yaml.v3 writes an indentation indicator of 4 for text starting with a space or newline, which
  // does not match the column it then indents to inside sequences; we do not reproduce that.
  if (s[0] === ' ' || s[0] === '\n') throw new GoYamlUnsupported('multi-line string starting with whitespace');
  let header = '|';
  if (!s.endsWith('\n')) header += '-';
  // "|+" (keep trailing newlines) marks the stream open-ended, which changes what follows it.
  else if (s === '\n' || s.endsWith('\n\n')) throw new GoYamlUnsupported('string with several trailing newlines');
  let body = '';
  let atLineStart = true;
  for (const c of s) {
    if (c === '\n') {
      body += '\n';
      atLineStart = true;
    } else {
      if (atLineStart) body += ' '.repeat(indent);
      body += c;
      atLineStart = false;
    }
  }
  // The caller terminates the line; a value that already ends in a newline must not get another.
  return header + '\n' + (s.endsWith('\n') ? body.slice(0, -1) : body);
}

/** sorter.go keyList.Less for two string keys (yaml.v3 sorts map keys "naturally"). */
export function goYamlKeyLess(a: string, b: string): boolean {
  const ar = Array.from(a);
  const br = Array.from(b);
  const isDigit = (c: string): boolean => /^\p{Nd}$/u.test(c);
  const isLetter = (c: string): boolean => /^\p{L}$/u.test(c);
  let digits = false;
  for (let i = 0; i < ar.length && i < br.length; i++) {
    const ac = ar[i]!;
    const bc = br[i]!;
    if (ac === bc) {
      digits = isDigit(ac);
      continue;
    }
    const al = isLetter(ac);
    const bl = isLetter(bc);
    if (al && bl) return ac.codePointAt(0)! < bc.codePointAt(0)!;
    if (al || bl) return digits ? al : bl;
    let an = 0n;
    let bn = 0n;
    if (ac === '0' || bc === '0') {
      for (let j = i - 1; j >= 0 && isDigit(ar[j]!); j--) {
        if (ar[j] !== '0') {
          an = 1n;
          bn = 1n;
          break;
        }
      }
    }
    let ai = i;
    for (; ai < ar.length && isDigit(ar[ai]!); ai++) an = an * 10n + BigInt(ar[ai]!.codePointAt(0)! - 48);
    let bi = i;
    for (; bi < br.length && isDigit(br[bi]!); bi++) bn = bn * 10n + BigInt(br[bi]!.codePointAt(0)! - 48);
    if (an !== bn) return an < bn;
    if (ai !== bi) return ai < bi;
    return ac.codePointAt(0)! < bc.codePointAt(0)!;
  }
  return ar.length < br.length;
}

/** strconv.FormatFloat(f, 'g', -1, 64) as yaml.v3 floatv uses it. */
export function goFormatFloat(f: number): string {
  if (Number.isNaN(f)) return '.nan';
  if (f === Infinity) return '.inf';
  if (f === -Infinity) return '-.inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  const [mant, expStr] = f.toExponential().split('e') as [string, string];
  const exp = Number(expStr);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  const sign = neg ? '-' : '';
  if (exp < -4 || exp >= 6) {
    // %g with shortest digits switches to %e at exponent 6; Go writes two exponent digits at least.
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return sign + digits + '0'.repeat(exp + 1 - digits.length);
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/** A JSON-ish value as yaml.v3 would marshal it after decoding YAML into `any`. */
export function goNodeFromValue(v: unknown): GoNode {
  if (v === null || v === undefined) return { t: 'raw', v: 'null' };
  if (typeof v === 'string') return { t: 'str', v };
  if (typeof v === 'boolean') return { t: 'raw', v: String(v) };
  if (typeof v === 'number') return { t: 'raw', v: Number.isInteger(v) && Math.abs(v) < 2 ** 63 ? BigInt(v).toString() : goFormatFloat(v) };
  if (Array.isArray(v)) return { t: 'seq', items: v.map(goNodeFromValue) };
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort((a, b) => (goYamlKeyLess(a, b) ? -1 : goYamlKeyLess(b, a) ? 1 : 0));
    return { t: 'map', entries: keys.map((k) => [k, goNodeFromValue((v as Record<string, unknown>)[k])]) };
  }
  throw new GoYamlUnsupported(`cannot marshal a ${typeof v}`);
}
