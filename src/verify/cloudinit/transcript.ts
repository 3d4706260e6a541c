// The reference NoCloud client's serial transcript (images/cloudinit/guest/edgeimg-cloudinit-report):
//
//   EDGEIMG-CI BEGIN v1 nonce=<n> copy=<c> records=<N> bytes=<B> sha256=<hex>
//   EDGEIMG-CI R <crc32> <i>/<N> <payload>          i = 1..N, payload <= 120 ASCII characters
//   EDGEIMG-CI END v1 nonce=<n> copy=<c> records=<N> sha256=<hex>
//
// The payloads, concatenated in order, are one JSON document (ASCII; sha256 and length in
// BEGIN). The whole block is printed twice. The serial console is shared with the kernel and
// systemd, so a line may be torn or interleaved with their messages: each record carries the
// CRC-32 of "<i>/<N> <payload>", a record whose CRC does not match is ignored (counted as
// garbled), and each record is taken from whichever copy has it intact. The document is
// accepted only when every record was recovered and the sha256 matches.

import { createHash } from 'node:crypto';

export const TRANSCRIPT_PREFIX = 'EDGEIMG-CI';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib/binascii.crc32) of a string's UTF-8 bytes, as 8 hex digits. */
export function crc32Hex(s: string): string {
  let c = 0xffffffff;
  for (const b of Buffer.from(s, 'utf8')) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, '0');
}

export interface TranscriptResult {
  /** The parsed JSON document, when it was recovered completely and its digest matched. */
  document?: unknown;
  /** Why there is no document, or what was wrong on the way (non-fatal ones too). */
  problems: string[];
  /** Copies of the block whose BEGIN was seen. */
  copies: number;
  /** Record lines rejected because their CRC did not match (torn or interleaved lines). */
  garbled: number;
  /** Record numbers no copy had intact. */
  missing: number[];
}

const BEGIN_RE = /EDGEIMG-CI BEGIN v1 nonce=([A-Za-z0-9._-]+) copy=(\d+) records=(\d+) bytes=(\d+) sha256=([0-9a-f]{64})\s*$/;
const END_RE = /EDGEIMG-CI END v1 nonce=([A-Za-z0-9._-]+) copy=(\d+) records=(\d+) sha256=([0-9a-f]{64})\s*$/;
const REC_RE = /EDGEIMG-CI R ([0-9a-f]{8}) ((\d+)\/(\d+) (.*))$/;

/**
 * Recovers the report document from a serial log. `nonce`, when given, must match the one in
 * BEGIN (a transcript from another boot is not accepted).
 */
export function parseTranscript(serial: string, nonce?: string): TranscriptResult {
  const problems: string[] = [];
  let copies = 0;
  let garbled = 0;
  // header candidates: records/bytes/sha256 as announced by BEGIN (or END) lines of this nonce
  const headers = new Map<string, { records: number; bytes: number; sha256: string; count: number }>();
  const records = new Map<string, string>(); // "<i>/<N>" -> payload
  let otherNonce: string | undefined;
  for (const raw of serial.split('\n')) {
    const line = raw.replace(/\r/g, '');
    const at = line.indexOf(`${TRANSCRIPT_PREFIX} `);
    if (at < 0) continue;
    const text = line.slice(at);
    let m = BEGIN_RE.exec(text);
    if (m) {
      if (nonce !== undefined && m[1] !== nonce) {
        otherNonce = m[1];
        continue;
      }
      copies++;
      const key = `${m[3]}/${m[5]}`;
      const h = headers.get(key) ?? { records: Number(m[3]), bytes: Number(m[4]), sha256: m[5]!, count: 0 };
      h.count++;
      headers.set(key, h);
      continue;
    }
    m = END_RE.exec(text);
    if (m) continue;
    m = REC_RE.exec(text);
    if (m) {
      if (crc32Hex(m[2]!) !== m[1]) {
        garbled++;
        continue;
      }
      const id = `${m[3]}/${m[4]}`;
      if (!records.has(id)) records.set(id, m[5]!);
      continue;
    }
    if (/EDGEIMG-CI (BEGIN|END|R) /.test(text)) garbled++;
  }
  if (headers.size === 0) {
    problems.push(
      otherNonce !== undefined
        ? `the report belongs to another boot (nonce ${otherNonce}, expected ${nonce})`
        : 'no report on the serial console (EDGEIMG-CI BEGIN not seen)',
    );
    return { problems, copies, garbled, missing: [] };
  }
  if (headers.size > 1) problems.push(`${headers.size} different report headers seen; using the most frequent`);
  const header = [...headers.values()].sort((a, b) => b.count - a.count)[0]!;
  const missing: number[] = [];
  let body = '';
  for (let i = 1; i <= header.records; i++) {
    const p = records.get(`${i}/${header.records}`);
    if (p === undefined) missing.push(i);
    else body += p;
  }
  if (missing.length > 0) {
    problems.push(`report incomplete: record(s) ${missing.join(', ')} of ${header.records} missing or garbled in every copy`);
    return { problems, copies, garbled, missing };
  }
  const digest = createHash('sha256').update(body, 'utf8').digest('hex');
  if (body.length !== header.bytes || digest !== header.sha256) {
    problems.push(`report digest mismatch (${body.length} bytes, sha256 ${digest.slice(0, 12)}…; BEGIN says ${header.bytes} bytes, ${header.sha256.slice(0, 12)}…)`);
    return { problems, copies, garbled, missing };
  }
  try {
    return { document: JSON.parse(body) as unknown, problems, copies, garbled, missing };
  } catch (e) {
    problems.push(`report is not valid JSON: ${(e as Error).message}`);
    return { problems, copies, garbled, missing };
  }
}

/** Renders a document as a transcript exactly as the guest reporter does (tests, fixtures). */
export function renderTranscript(document: unknown, nonce: string, copies = 2, chunk = 120): string {
  const body = JSON.stringify(document);
  if (!/^[\x20-\x7e]*$/.test(body)) throw new Error('renderTranscript: the JSON must be printable ASCII (as json.dumps(ensure_ascii=True) emits)');
  const digest = createHash('sha256').update(body, 'utf8').digest('hex');
  const parts: string[] = [];
  for (let i = 0; i < body.length; i += chunk) parts.push(body.slice(i, i + chunk));
  if (parts.length === 0) parts.push('');
  const n = parts.length;
  const lines: string[] = [];
  for (let c = 1; c <= copies; c++) {
    lines.push(`${TRANSCRIPT_PREFIX} BEGIN v1 nonce=${nonce} copy=${c} records=${n} bytes=${body.length} sha256=${digest}`);
    parts.forEach((p, i) => {
      const rec = `${i + 1}/${n} ${p}`;
      lines.push(`${TRANSCRIPT_PREFIX} R ${crc32Hex(rec)} ${rec}`);
    });
    lines.push(`${TRANSCRIPT_PREFIX} END v1 nonce=${nonce} copy=${c} records=${n} sha256=${digest}`);
  }
  return lines.map((l) => `\r\n${l}\r\n`).join('');
}
