// A small deterministic YAML emitter for plain data (maps, lists, strings, numbers, booleans,
// null), used for every YAML artifact we write. It exists because the general-purpose
// stringifier builds a full document model per call, which made serialisation the largest
// cost of a fleet build (see docs/decisions.md). Output is block style, keys in insertion
// order, and every string that YAML 1.1 or 1.2 would read as something else is quoted, so the
// Go (yaml.v3), Python (PyYAML) and JS readers our outputs meet all get the same values back.

export interface EmitOptions {
  /** Spaces per nesting level: 4 matches talosctl output, 2 matches cloud-config convention. */
  indent: number;
  /** Integer values under these keys are written in octal (file modes: 0644). */
  octalKeys?: readonly string[];
}

type Value = unknown;

const NULLISH = /^(?:~|null|Null|NULL)$/;
const BOOL_11 = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
const INT = /^[-+]?(?:0b[0-1_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*|[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
// YAML 1.1 floats are loose ("." and "e0" included for some readers): quote anything shaped so
const FLOAT_11 = /^[-+]?[0-9._]*(?:[eE][-+]?[0-9]+)?$/;
const FLOAT = /^[-+]?(?:(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const TIMESTAMP = /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?$/;
const INDICATOR_START = /^[?:,[\]{}#&*!|>'"%@`]/;
// eslint-disable-next-line no-control-regex
const NEEDS_DOUBLE = /[\u0000-\u0008\u000b-\u001f\u007f\u0085\u2028\u2029\ufeff]/;

/** Can `s` be written unquoted and still read back as this exact string? */
export function isPlainSafe(s: string): boolean {
  if (s === '' || s.trim() !== s || s.includes('\n') || s.includes('\t')) return false;
  if (NEEDS_DOUBLE.test(s)) return false;
  if (INDICATOR_START.test(s)) return false;
  if (s[0] === '-' && (s.length === 1 || s[1] === ' ' || s.startsWith('---'))) return false;
  if (s.startsWith('...')) return false;
  if (s.includes(': ') || s.includes(' #') || s.endsWith(':')) return false;
  if (s === '<<' || s === '=') return false;
  return !(NULLISH.test(s) || BOOL_11.test(s) || INT.test(s) || FLOAT.test(s) || FLOAT_11.test(s) || TIMESTAMP.test(s));
}

function quoted(s: string): string {
  if (!NEEDS_DOUBLE.test(s) && !s.includes('\n') && !s.includes('\t')) return `'${s.replace(/'/g, "''")}'`;
  return JSON.stringify(s); // JSON escapes are valid YAML double-quoted escapes
}

function scalarText(v: Value): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return '.nan';
    if (!Number.isFinite(v)) return v > 0 ? '.inf' : '-.inf';
    return String(v);
  }
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return isPlainSafe(v) ? v : quoted(v);
  throw new TypeError(`cannot emit ${typeof v} as YAML`);
}

/** Multi-line strings become literal blocks when YAML can carry them verbatim. */
function blockScalar(s: string, contentIndent: number): string | undefined {
  if (!s.includes('\n') || NEEDS_DOUBLE.test(s) || s.includes('\r') || /^\n*$/.test(s)) return undefined;
  const body = s.replace(/\n+$/, '');
  const trailing = s.length - body.length;
  const chomp = trailing === 0 ? '-' : trailing === 1 ? '' : '+';
  const lines = body.split('\n');
  // a leading space on the first line, or whitespace-only lines, would be read back differently
  if (lines[0]!.startsWith(' ') || lines[0] === '' || lines.some((l) => l.length > 0 && l.trim() === '')) return undefined;
  const pad = ' '.repeat(contentIndent);
  const extra = chomp === '+' ? '\n'.repeat(trailing - 1) : '';
  return `|${chomp}\n${lines.map((l) => (l === '' ? '' : pad + l)).join('\n')}\n${extra}`;
}

const isMap = (v: Value): v is Record<string, Value> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function emitYaml(root: Value, opts: EmitOptions): string {
  const ind = opts.indent;
  const octal = new Set(opts.octalKeys ?? []);
  const out: string[] = [];

  // Writes `value` that follows a key or dash on the current line (`prefix`), at nesting column `col`.
  const node = (prefix: string, value: Value, col: number): void => {
    if (Array.isArray(value)) {
      if (value.length === 0) {
        out.push(`${prefix}[]\n`);
        return;
      }
      if (prefix !== '') out.push(`${prefix.trimEnd()}\n`);
      // with a non-empty prefix the sequence sits on its own lines, indented under its key
      const seqCol = prefix === '' ? col : col + ind;
      for (const item of value) node(`${' '.repeat(seqCol)}- `, item, seqCol + 2);
      return;
    }
    if (isMap(value)) {
      const keys = Object.keys(value).filter((k) => value[k] !== undefined);
      if (keys.length === 0) {
        out.push(`${prefix}{}\n`);
        return;
      }
      const inline = prefix.trimStart().startsWith('- ') || prefix.trimStart() === '-';
      let first = true;
      let mapCol = col;
      if (!inline) {
        if (prefix !== '') out.push(`${prefix.trimEnd()}\n`);
        mapCol = prefix === '' ? col : col + ind;
      }
      for (const k of keys) {
        const keyText = scalarText(k);
        const lead = inline && first ? prefix : ' '.repeat(mapCol);
        first = false;
        entry(`${lead}${keyText}: `, value[k], mapCol, k);
      }
      return;
    }
    if (typeof value === 'string' && value.includes('\n')) {
      const block = blockScalar(value, prefix === '' ? col : col + ind);
      if (block !== undefined) {
        out.push(`${prefix}${block}`);
        return;
      }
    }
    out.push(`${prefix}${scalarText(value)}\n`);
  };

  // A map entry: nested collections go on the following lines relative to the key's column.
  const entry = (prefix: string, value: Value, keyCol: number, key: string): void => {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && octal.has(key)) {
      out.push(`${prefix}0${value.toString(8)}\n`);
      return;
    }
    if (Array.isArray(value) && value.length === 0) {
      out.push(`${prefix}[]\n`);
      return;
    }
    if (isMap(value) && !Object.keys(value).some((k) => value[k] !== undefined)) {
      out.push(`${prefix}{}\n`);
      return;
    }
    if (Array.isArray(value) && value.length > 0) {
      out.push(`${prefix.trimEnd()}\n`);
      for (const item of value) node(`${' '.repeat(keyCol + ind)}- `, item, keyCol + ind + 2);
      return;
    }
    if (isMap(value) && Object.keys(value).some((k) => value[k] !== undefined)) {
      out.push(`${prefix.trimEnd()}\n`);
      const c = keyCol + ind;
      for (const k of Object.keys(value)) {
        if (value[k] === undefined) continue;
        entry(`${' '.repeat(c)}${scalarText(k)}: `, value[k], c, k);
      }
      return;
    }
    if (typeof value === 'string' && value.includes('\n')) {
      const block = blockScalar(value, keyCol + ind);
      if (block !== undefined) {
        out.push(`${prefix}${block}`);
        return;
      }
    }
    out.push(`${prefix}${scalarText(value)}\n`);
  };

  node('', root, 0);
  return out.join('');
}
