// The `edgeimg …` command lines of a shell script (a workflow's `run:`, a Kubernetes container's
// `sh -c` argument), as the argument vectors the shell would pass: quotes removed, variables
// replaced by sample values. Enough shell for the scripts in examples/; a line it cannot read
// is reported rather than skipped (see `unparsedEdgeimgLines`).

/** Sample values for variables: a list stands for a value that splits into several words. */
export type Vars = Record<string, string | string[]>;

type Token = { word: string[] } | { op: string };

const OPERATORS = ['&&', '||', ';;', '>>', '<<<', '<<', '>&', '2>&1', '2>', '&>', ';', '|', '&', '(', ')', '<', '>', '\n'];
const REDIRECTS = new Set(['>>', '<<<', '<<', '>&', '2>', '&>', '<', '>']);
/** Words after which the next word starts a command. */
const COMMAND_PREFIXES = new Set(['exec', 'then', 'do', 'else', 'elif', '!', 'time', 'if', 'while', 'until', 'command']);

/** The value of `$name` / `${name}` / `${name[@]}`; unknown names get a placeholder. */
function lookup(vars: Vars, name: string): string | string[] {
  return vars[name] ?? 'VALUE';
}

/**
 * Reads `$…` at `s[i]`; returns the expansion and the index after it. `$((…))` is arithmetic
 * (sample value "1"), `$(…)` a command substitution (placeholder).
 */
function dollar(s: string, i: number, vars: Vars): { value: string | string[]; end: number } {
  if (s.startsWith('$((', i)) {
    const end = s.indexOf('))', i);
    if (end < 0) throw new Error(`unterminated $(( in ${JSON.stringify(s.slice(i, i + 40))}`);
    return { value: '1', end: end + 2 };
  }
  if (s[i + 1] === '(') {
    let depth = 0;
    for (let j = i + 1; j < s.length; j++) {
      if (s[j] === '(') depth++;
      else if (s[j] === ')' && --depth === 0) return { value: 'VALUE', end: j + 1 };
    }
    throw new Error(`unterminated $( in ${JSON.stringify(s.slice(i, i + 40))}`);
  }
  if (s[i + 1] === '{') {
    const end = s.indexOf('}', i);
    if (end < 0) throw new Error(`unterminated \${ in ${JSON.stringify(s.slice(i, i + 40))}`);
    const inner = s.slice(i + 2, end);
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(inner)?.[0];
    if (!name) throw new Error(`cannot read \${${inner}}`);
    const v = lookup(vars, name);
    // ${x:0:12}, ${x%…} and the like: keep it one word
    return { value: inner === name || inner === `${name}[@]` ? v : Array.isArray(v) ? v.join(' ') : v, end: end + 1 };
  }
  const name = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9#?@*$!-]/.exec(s.slice(i + 1))?.[0];
  if (!name) return { value: '$', end: i + 1 };
  return { value: lookup(vars, name), end: i + 1 + name.length };
}

/** Splits a script (continuations already joined) into words and operators; newlines are operators. */
export function tokenize(line: string, vars: Vars): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '#') {
      // a comment runs to the end of the line
      const nl = line.indexOf('\n', i);
      i = nl < 0 ? line.length : nl;
      continue;
    }
    const op = OPERATORS.find((o) => line.startsWith(o, i));
    if (op) {
      out.push({ op });
      i += op.length;
      continue;
    }
    // a word: pieces are concatenated; a word that is only an unquoted (or "…[@]"-quoted) list
    // variable becomes several words
    let text = '';
    let multi: string[] | undefined;
    let pieces = 0;
    while (i < line.length && !/[\s;&|()<>]/.test(line[i]!)) {
      const ch = line[i]!;
      pieces++;
      if (ch === "'") {
        const end = line.indexOf("'", i + 1);
        if (end < 0) throw new Error(`unterminated ' in ${JSON.stringify(line)}`);
        text += line.slice(i + 1, end);
        i = end + 1;
      } else if (ch === '"') {
        let j = i + 1;
        let inner = '';
        let innerList: string[] | undefined;
        let innerPieces = 0;
        while (j < line.length && line[j] !== '"') {
          innerPieces++;
          if (line[j] === '\\' && j + 1 < line.length) {
            inner += line[j + 1];
            j += 2;
          } else if (line[j] === '$') {
            const d = dollar(line, j, vars);
            if (Array.isArray(d.value)) {
              innerList = d.value;
              inner += d.value.join(' ');
            } else inner += d.value;
            j = d.end;
          } else inner += line[j++];
        }
        if (j >= line.length) throw new Error(`unterminated " in ${JSON.stringify(line)}`);
        if (innerList && innerPieces === 1 && /^"\$\{[A-Za-z_][A-Za-z0-9_]*\[@\]\}"/.test(line.slice(i))) multi = innerList;
        text += inner;
        i = j + 1;
      } else if (ch === '\\') {
        text += line[i + 1] ?? '';
        i += 2;
      } else if (ch === '$') {
        const d = dollar(line, i, vars);
        if (Array.isArray(d.value)) {
          multi = d.value;
          text += d.value.join(' ');
        } else text += d.value;
        i = d.end;
      } else {
        text += ch;
        i++;
      }
    }
    out.push({ word: multi && pieces === 1 ? multi : [text] });
  }
  return out;
}

/** Joins backslash-newline continuations; keeps one entry per logical line. */
export function logicalLines(script: string): string[] {
  return script.replace(/\\\n/g, ' ').split('\n');
}

/** Every `edgeimg ARGS…` simple command in the script, as its argument vector (without "edgeimg"). */
export function edgeimgCommands(script: string, vars: Vars): string[][] {
  const found: string[][] = [];
  {
    const tokens = tokenize(script.replace(/\\\n/g, ' '), vars);
    let atCommandStart = true;
    let current: string[] | undefined;
    let skipNext = false;
    const finish = (): void => {
      if (current) found.push(current);
      current = undefined;
    };
    for (const t of tokens) {
      if ('op' in t) {
        if (REDIRECTS.has(t.op)) {
          skipNext = true; // the redirection's target
          continue;
        }
        if (t.op === '2>&1') continue;
        finish();
        atCommandStart = true;
        continue;
      }
      if (skipNext) {
        skipNext = false;
        continue;
      }
      if (current) {
        current.push(...t.word);
        continue;
      }
      if (atCommandStart) {
        const w = t.word[0] ?? '';
        if (t.word.length === 1 && w === 'edgeimg') current = [];
        else if (COMMAND_PREFIXES.has(w) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) continue;
        atCommandStart = false;
      }
    }
    finish();
  }
  return found;
}

/**
 * How many times the script mentions `edgeimg SUBCOMMAND` outside comment lines, quoted text
 * included: each must be a command `edgeimgCommands` read, so a construct the lexer misses
 * (say, "$(edgeimg …)") fails the test instead of going unchecked.
 */
export function edgeimgMentions(script: string): number {
  let n = 0;
  for (const l of logicalLines(script)) {
    if (/^\s*#/.test(l)) continue;
    n += [...l.matchAll(/(^|[\s;&|("'])edgeimg\s+[a-z]/g)].length;
  }
  return n;
}
