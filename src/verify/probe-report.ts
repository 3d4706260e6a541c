// Parses the serial-console transcript of the boot-verification probe (images/probe/init) and
// compares it with the files the seed should contain.
//
// Transcript lines (v1), each "EDGEIMG-PROBE <TYPE> [key=value ...]"; values never contain
// spaces (the probe percent-encodes anything outside [A-Za-z0-9._~/-]):
//   BEGIN v1 nonce=<nonce|->
//   KERNEL release=<uname -r> machine=<uname -m>
//   DEVICE device=/dev/X size=<bytes> fstype=iso9660|vfat label=<label>   (every recognised fs)
//   VOLUME device=/dev/X label=<label> fstype=<fstype> size=<bytes>       (the chosen cidata volume)
//   FILE name=<path> size=<bytes> sha256=<hex>                            (sorted by name)
//   NODE instance_id=<meta-data instance-id> hostname=<local-hostname>   (whose seed it is)
// Stand-in class images (images/standin/) add:
//   STANDIN kind=talos-like|kairos-like                                   (which discovery rules ran)
//   BOOT device=/dev/X label=<volume id> fstype=iso9660 declared=<bytes> actual=<bytes>
//   SKIP device=/dev/X ... reason=<why a cidata volume was passed over>
//   VOLUME ... source=live                                                (config.yaml on the live medium)
//   WARN <text> / ERROR <text> / LOG <text> / HANG requested
//   END status=ok|error files=<n>

import { redactedExcerpt } from '../util/diagnostics.js';
import { createHash } from 'node:crypto';

export const PROBE_PREFIX = 'EDGEIMG-PROBE';

export interface ProbeVolume {
  device: string;
  label: string;
  fstype: string;
  size?: number;
}

export interface ProbeFile {
  name: string;
  size: number;
  sha256: string;
}

export interface ProbeDevice {
  device: string;
  label: string;
  fstype: string;
  size?: number;
}

export type ProbeStatus = 'ok' | 'error' | 'incomplete';

export interface ProbeReport {
  status: ProbeStatus;
  /** Transcript format version from BEGIN. */
  version?: number;
  nonce?: string;
  /** `uname -r` of the probe kernel. */
  kernel?: string;
  machine?: string;
  volume?: ProbeVolume;
  files: ProbeFile[];
  /** Every iso9660/vfat filesystem the probe recognised, cidata or not. */
  devices: ProbeDevice[];
  /** The first problem: an ERROR line, or why the transcript is incomplete. */
  error?: string;
  errors: string[];
  warnings: string[];
  /** LOG lines (dmesg excerpts on failure, debug output). */
  log: string[];
  /** Whose seed booted, from its meta-data (NODE line). */
  node?: { instanceId: string; hostname: string };
  /** Stand-in class images: which discovery rules ran (STANDIN line). */
  standin?: string;
  /** Stand-in class images: the medium they booted from (BOOT line). */
  boot?: { device: string; label: string; declared?: number; actual?: number };
  /** Stand-in class images: cidata volumes passed over, and why (SKIP lines). */
  skipped: Array<{ device: string; reason: string }>;
  /** `live` when the configuration came from the boot medium itself (Kairos config.yaml). */
  source?: string;
}

/** An expected seed file: either its bytes, or its size and sha256. */
export type ExpectedFile = { name: string; data: Uint8Array | string } | { name: string; sha256: string; size?: number };

interface Line {
  type: string;
  rest: string;
  fields: Map<string, string>;
}

function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      for (const b of Buffer.from(s[i] as string, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function parseLine(raw: string): Line | undefined {
  const at = raw.indexOf(`${PROBE_PREFIX} `);
  if (at < 0) return undefined;
  const body = raw.slice(at + PROBE_PREFIX.length + 1).replace(/[\r\n]+$/, '').trimEnd();
  const sp = body.indexOf(' ');
  const type = sp < 0 ? body : body.slice(0, sp);
  const rest = sp < 0 ? '' : body.slice(sp + 1);
  if (!/^[A-Z]+$/.test(type)) return undefined;
  const fields = new Map<string, string>();
  for (const tok of rest.split(/\s+/)) {
    const eq = tok.indexOf('=');
    if (eq > 0 && /^[a-z0-9_]+$/.test(tok.slice(0, eq))) fields.set(tok.slice(0, eq), percentDecode(tok.slice(eq + 1)));
  }
  return { type, rest, fields };
}

function num(s: string | undefined): number | undefined {
  return s !== undefined && /^[0-9]+$/.test(s) ? Number(s) : undefined;
}

/**
 * Parses a probe transcript out of a serial log (kernel messages and other noise are ignored).
 * With `nonce`, only the transcript whose BEGIN carries that nonce counts: a transcript from
 * another run (or none at all) is not taken as this run's result.
 *
 * status: `ok` when END says ok and no ERROR line was seen; `error` when END says error or an
 * ERROR line was seen; `incomplete` when there is no BEGIN (for this nonce) or no END.
 */
export function parseProbeTranscript(serial: string, nonce?: string): ProbeReport {
  const lines: Line[] = [];
  for (const raw of serial.split('\n')) {
    const l = parseLine(raw);
    if (l) lines.push(l);
  }
  // The probe prints its report, then (after the serial line drained) the same report again.
  // END carries the count and checksum of the lines before it: the first copy whose checksum
  // holds is taken, so console noise breaking into one copy costs nothing. A transcript whose
  // END has no checksum (an older probe) is read as before.
  const starts = lines.map((l, i) => ({ l, i })).filter(({ l }) => l.type === 'BEGIN' && (nonce === undefined || l.fields.get('nonce') === nonce));
  let damaged = false;
  for (const { i } of starts) {
    const end = lines.findIndex((l, j) => j > i && (l.type === 'END' || l.type === 'BEGIN'));
    if (end < 0 || lines[end]!.type !== 'END') continue;
    const sum = lines[end]!.fields.get('sum');
    if (sum === undefined) break; // no checksum: the first transcript decides, as before
    if (checksumHolds(lines.slice(i, end), sum, num(lines[end]!.fields.get('lines')))) return parseFrom(lines, i, nonce);
    damaged = true;
  }
  const report = parseFrom(lines, starts[0]?.i, nonce);
  if (damaged && report.status === 'ok') {
    report.status = 'error';
    report.error = 'transcript damaged: no copy of the report matches its END checksum (console output broke into it)';
    report.errors.push(report.error);
  }
  return report;
}

function checksumHolds(block: Line[], sum: string, count: number | undefined): boolean {
  if (count !== undefined && count !== block.length) return false;
  const text = block.map((l) => (l.rest === '' ? l.type : `${l.type} ${l.rest}`)).join('\n') + '\n';
  return createHash('sha256').update(text).digest('hex').startsWith(sum) && /^[0-9a-f]{16}$/.test(sum);
}

function parseFrom(lines: Line[], startIndex: number | undefined, nonce: string | undefined): ProbeReport {
  const report: ProbeReport = { status: 'incomplete', files: [], devices: [], errors: [], warnings: [], log: [], skipped: [] };
  const begins = lines.map((l, i) => ({ l, i })).filter(({ l }) => l.type === 'BEGIN');
  if (begins.length === 0) {
    report.error = 'no probe transcript in the serial log (BEGIN line not found)';
    return report;
  }
  let start = begins.find(({ i }) => i === startIndex) ?? begins[0]!;
  if (nonce !== undefined && start.l.fields.get('nonce') !== nonce) {
    const match = begins.find(({ l }) => l.fields.get('nonce') === nonce);
    if (!match) {
      const got = begins.map(({ l }) => l.fields.get('nonce') ?? '-').join(', ');
      report.status = 'error';
      report.error = `transcript nonce mismatch (expected ${nonce}, got ${got})`;
      report.errors.push(report.error);
      return report;
    }
    start = match;
  }
  const version = /^v([0-9]+)\b/.exec(start.l.rest);
  if (version) report.version = Number(version[1]);
  const n = start.l.fields.get('nonce');
  if (n !== undefined && n !== '-') report.nonce = n;

  let ended = false;
  let endStatus: string | undefined;
  let endFiles: number | undefined;
  for (const l of lines.slice(start.i + 1)) {
    if (l.type === 'BEGIN') break; // a second boot: this run's transcript ended without END
    switch (l.type) {
      case 'KERNEL':
        report.kernel = l.fields.get('release');
        report.machine = l.fields.get('machine');
        break;
      case 'DEVICE':
        report.devices.push({
          device: l.fields.get('device') ?? '',
          label: l.fields.get('label') ?? '',
          fstype: l.fields.get('fstype') ?? '',
          size: num(l.fields.get('size')),
        });
        break;
      case 'VOLUME':
        report.volume = {
          device: l.fields.get('device') ?? '',
          label: l.fields.get('label') ?? '',
          fstype: l.fields.get('fstype') ?? '',
          size: num(l.fields.get('size')),
        };
        if (l.fields.get('source')) report.source = l.fields.get('source');
        break;
      case 'FILE': {
        const name = l.fields.get('name');
        const size = num(l.fields.get('size'));
        const sha256 = l.fields.get('sha256');
        if (name !== undefined && size !== undefined && sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256)) {
          report.files.push({ name, size, sha256 });
        } else {
          report.errors.push(`malformed FILE line: ${redactedExcerpt(l.rest)}`);
        }
        break;
      }
      case 'NODE':
        report.node = { instanceId: l.fields.get('instance_id') ?? '', hostname: l.fields.get('hostname') ?? '' };
        break;
      case 'STANDIN':
        report.standin = l.fields.get('kind');
        break;
      case 'BOOT':
        report.boot = {
          device: l.fields.get('device') ?? '',
          label: l.fields.get('label') ?? '',
          declared: num(l.fields.get('declared')),
          actual: num(l.fields.get('actual')),
        };
        break;
      case 'SKIP':
        report.skipped.push({ device: l.fields.get('device') ?? '', reason: l.fields.get('reason') ?? '' });
        break;
      case 'ERROR':
        report.errors.push(percentDecode(l.rest));
        break;
      case 'WARN':
        report.warnings.push(l.rest);
        break;
      case 'LOG':
        report.log.push(l.rest);
        break;
      case 'END':
        ended = true;
        endStatus = l.fields.get('status');
        endFiles = num(l.fields.get('files'));
        break;
      default:
        break;
    }
    if (ended) break;
  }
  report.files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  if (!ended) {
    report.status = report.errors.length > 0 ? 'error' : 'incomplete';
    report.error = report.errors[0] ?? 'probe did not finish (no END line in the serial log)';
    return report;
  }
  if (endFiles !== undefined && endFiles !== report.files.length && endStatus === 'ok') {
    report.errors.push(`transcript lost lines: END reports ${endFiles} files, ${report.files.length} FILE lines seen`);
  }
  if (endStatus !== 'ok' && endStatus !== 'error') {
    report.errors.push(`unknown END status "${endStatus ?? ''}"`);
  }
  if (endStatus === 'error' && report.errors.length === 0) {
    report.errors.push('probe reported an error without an ERROR line');
  }
  report.status = report.errors.length > 0 ? 'error' : 'ok';
  report.error = report.errors[0];
  return report;
}

function expectedDigest(e: ExpectedFile): { sha256: string; size?: number } {
  if ('data' in e) {
    const buf = typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : e.data;
    return { sha256: createHash('sha256').update(buf).digest('hex'), size: buf.length };
  }
  return { sha256: e.sha256.toLowerCase(), size: e.size };
}

export interface CompareOptions {
  /** Files on the volume that are not expected are problems unless this is set. */
  allowExtra?: boolean;
}

/**
 * Lists the differences between what the probe saw and what the seed should contain; empty
 * means the boot verified. Examples: `no cidata volume found`, `missing file network-config`,
 * `user-data: sha256 mismatch (expected …, got …)`.
 */
export function compareProbeReport(report: ProbeReport, expected: readonly ExpectedFile[], opts: CompareOptions = {}): string[] {
  const problems: string[] = [];
  if (report.status === 'incomplete') {
    problems.push(report.error ?? 'probe did not finish');
    return problems;
  }
  for (const e of report.errors) problems.push(e);
  if (!report.volume) {
    if (report.errors.length === 0) problems.push('no cidata volume found');
    return problems;
  }
  const seen = new Map(report.files.map((f) => [f.name, f]));
  const wanted = [...expected].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of wanted) {
    const got = seen.get(e.name);
    if (!got) {
      problems.push(`missing file ${e.name}`);
      continue;
    }
    const want = expectedDigest(e);
    if (want.size !== undefined && want.size !== got.size) {
      problems.push(`${e.name}: size mismatch (expected ${want.size}, got ${got.size})`);
    }
    if (want.sha256 !== got.sha256) {
      problems.push(`${e.name}: sha256 mismatch (expected ${want.sha256}, got ${got.sha256})`);
    }
  }
  if (!opts.allowExtra) {
    const names = new Set(expected.map((e) => e.name));
    for (const f of report.files) if (!names.has(f.name)) problems.push(`unexpected file ${f.name}`);
  }
  return problems;
}
