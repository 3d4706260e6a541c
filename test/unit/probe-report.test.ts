import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compareProbeReport, parseProbeTranscript } from '../../src/verify/probe-report.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

const USER = '#cloud-config\nhostname: n1\n';
const META = 'instance-id: n1\n';
const NET = 'version: 2\n';

function okTranscript(nonce = 'abc123'): string {
  return [
    'SeaBIOS (version 1.16.2-debian-1.16.2-1)',
    '[    0.000000] Linux version 6.1.0-56-amd64',
    `EDGEIMG-PROBE BEGIN v1 nonce=${nonce}`,
    'EDGEIMG-PROBE KERNEL release=6.1.0-56-amd64 machine=x86_64',
    'EDGEIMG-PROBE DEVICE device=/dev/sr0 size=376832 fstype=iso9660 label=cidata',
    'EDGEIMG-PROBE VOLUME device=/dev/sr0 label=cidata fstype=iso9660 size=376832',
    `EDGEIMG-PROBE FILE name=meta-data size=${META.length} sha256=${sha(META)}`,
    `EDGEIMG-PROBE FILE name=network-config size=${NET.length} sha256=${sha(NET)}`,
    `EDGEIMG-PROBE FILE name=user-data size=${USER.length} sha256=${sha(USER)}`,
    'EDGEIMG-PROBE END status=ok files=3',
    '[    5.975289] reboot: Power down',
    '',
  ].join('\r\n');
}

const expected = [
  { name: 'user-data', data: USER },
  { name: 'meta-data', data: META },
  { name: 'network-config', sha256: sha(NET), size: NET.length },
];

describe('parseProbeTranscript', () => {
  it('parses a passing transcript (CRLF, kernel noise around it)', () => {
    const r = parseProbeTranscript(okTranscript(), 'abc123');
    expect(r.status).toBe('ok');
    expect(r.version).toBe(1);
    expect(r.nonce).toBe('abc123');
    expect(r.kernel).toBe('6.1.0-56-amd64');
    expect(r.machine).toBe('x86_64');
    expect(r.volume).toEqual({ device: '/dev/sr0', label: 'cidata', fstype: 'iso9660', size: 376832 });
    expect(r.devices).toHaveLength(1);
    expect(r.files.map((f) => f.name)).toEqual(['meta-data', 'network-config', 'user-data']);
    expect(r.files[2]).toEqual({ name: 'user-data', size: USER.length, sha256: sha(USER) });
    expect(r.error).toBeUndefined();
    expect(compareProbeReport(r, expected)).toEqual([]);
  });

  it('reports no cidata volume', () => {
    const t = [
      'EDGEIMG-PROBE BEGIN v1 nonce=n1',
      'EDGEIMG-PROBE KERNEL release=6.1.0-56-arm64 machine=aarch64',
      'EDGEIMG-PROBE DEVICE device=/dev/sr0 size=362496 fstype=iso9660 label=notcidata',
      'EDGEIMG-PROBE ERROR no cidata volume found',
      'EDGEIMG-PROBE END status=error files=0',
    ].join('\n');
    const r = parseProbeTranscript(t, 'n1');
    expect(r.status).toBe('error');
    expect(r.error).toBe('no cidata volume found');
    expect(r.volume).toBeUndefined();
    expect(r.devices[0]?.label).toBe('notcidata');
    expect(compareProbeReport(r, expected)).toEqual(['no cidata volume found']);
  });

  it('reports a truncated volume and read errors', () => {
    const t = [
      'EDGEIMG-PROBE BEGIN v1 nonce=-',
      'EDGEIMG-PROBE VOLUME device=/dev/sr0 label=cidata fstype=iso9660 size=188416',
      'EDGEIMG-PROBE ERROR volume truncated device=/dev/sr0 declared=376832 actual=188416',
      'EDGEIMG-PROBE ERROR read failed name=user-data',
      `EDGEIMG-PROBE FILE name=meta-data size=${META.length} sha256=${sha(META)}`,
      'EDGEIMG-PROBE END status=error files=3',
    ].join('\n');
    const r = parseProbeTranscript(t);
    expect(r.status).toBe('error');
    expect(r.nonce).toBeUndefined();
    expect(r.errors).toEqual(['volume truncated device=/dev/sr0 declared=376832 actual=188416', 'read failed name=user-data']);
    const problems = compareProbeReport(r, expected);
    expect(problems).toContain('missing file user-data');
    expect(problems).toContain('missing file network-config');
    expect(problems[0]).toMatch(/^volume truncated/);
  });

  it('is incomplete without BEGIN or without END', () => {
    expect(parseProbeTranscript('[ 0.0] Linux version\nKernel panic').status).toBe('incomplete');
    const noEnd = okTranscript().split('\r\n').slice(0, 7).join('\n');
    const r = parseProbeTranscript(noEnd, 'abc123');
    expect(r.status).toBe('incomplete');
    expect(r.error).toMatch(/no END line/);
    expect(compareProbeReport(r, expected)).toEqual([r.error]);
  });

  it('ignores a transcript from another run (nonce)', () => {
    const r = parseProbeTranscript(okTranscript('other'), 'abc123');
    expect(r.status).toBe('error');
    expect(r.error).toBe('transcript nonce mismatch (expected abc123, got other)');
    expect(compareProbeReport(r, expected)).toEqual([r.error]);
  });

  it('picks the BEGIN with the right nonce among several boots', () => {
    const t = `EDGEIMG-PROBE BEGIN v1 nonce=old\nEDGEIMG-PROBE ERROR no cidata volume found\n${okTranscript('abc123')}`;
    const r = parseProbeTranscript(t, 'abc123');
    expect(r.status).toBe('ok');
  });

  it('detects lost FILE lines via the END count', () => {
    const t = okTranscript().replace(/EDGEIMG-PROBE FILE name=meta-data[^\r]*\r\n/, '');
    const r = parseProbeTranscript(t, 'abc123');
    expect(r.status).toBe('error');
    expect(r.error).toMatch(/END reports 3 files, 2 FILE lines seen/);
  });

  it('finds lines with a prefix glued on and decodes percent-encoded values', () => {
    const t = [
      '[    3.1] xyzEDGEIMG-PROBE BEGIN v1 nonce=z',
      'EDGEIMG-PROBE VOLUME device=/dev/sda1 label=my%20disk fstype=vfat size=1',
      `EDGEIMG-PROBE FILE name=dir/caf%C3%A9%25.txt size=1 sha256=${sha('x')}`,
      'EDGEIMG-PROBE END status=ok files=1',
    ].join('\n');
    const r = parseProbeTranscript(t, 'z');
    expect(r.status).toBe('ok');
    expect(r.volume?.label).toBe('my disk');
    expect(r.files[0]?.name).toBe('dir/café%.txt');
  });
});

describe('compareProbeReport', () => {
  it('names the file whose bytes changed', () => {
    const changed = '#cloud-config\nhostname: evil\n';
    const t = okTranscript().replace(
      `name=user-data size=${USER.length} sha256=${sha(USER)}`,
      `name=user-data size=${changed.length} sha256=${sha(changed)}`,
    );
    const problems = compareProbeReport(parseProbeTranscript(t, 'abc123'), expected);
    expect(problems).toEqual([
      `user-data: size mismatch (expected ${USER.length}, got ${changed.length})`,
      `user-data: sha256 mismatch (expected ${sha(USER)}, got ${sha(changed)})`,
    ]);
  });

  it('reports missing and unexpected files', () => {
    const t = okTranscript().replace('name=network-config', 'name=vendor-data');
    const r = parseProbeTranscript(t, 'abc123');
    expect(compareProbeReport(r, expected)).toEqual(['missing file network-config', 'unexpected file vendor-data']);
    expect(compareProbeReport(r, expected, { allowExtra: true })).toEqual(['missing file network-config']);
  });

  it('accepts bytes as Uint8Array and sha256 in upper case', () => {
    const r = parseProbeTranscript(okTranscript(), 'abc123');
    expect(
      compareProbeReport(r, [
        { name: 'user-data', data: new TextEncoder().encode(USER) },
        { name: 'meta-data', sha256: sha(META).toUpperCase() },
        { name: 'network-config', data: NET },
      ]),
    ).toEqual([]);
  });
});

describe('transcripts that survive console noise (END with lines= and sum=, report printed twice)', () => {
  const body = (nonce: string): string[] => [
    `BEGIN v1 nonce=${nonce}`,
    'KERNEL release=6.1.0-57-amd64 machine=x86_64',
    'VOLUME device=/dev/sr0 label=cidata fstype=iso9660 size=376832',
    `FILE name=meta-data size=${META.length} sha256=${sha(META)}`,
    `FILE name=network-config size=${NET.length} sha256=${sha(NET)}`,
    `FILE name=user-data size=${USER.length} sha256=${sha(USER)}`,
    'NODE instance_id=iid-s.n1.0 hostname=n1',
  ];
  const end = (lines: string[]): string => `END status=ok files=3 lines=${lines.length} sum=${sha(`${lines.join('\n')}\n`).slice(0, 16)}`;
  const copy = (lines: string[]): string[] => [...lines, end(lines)].map((l) => `EDGEIMG-PROBE ${l}`);

  it('takes the second copy when kernel output broke into the first one\'s last line', () => {
    const lines = body('n1');
    const first = copy(lines);
    first[first.length - 1] = first[first.length - 1]!.replace('files=3', 'fil[    6.1] reboot: Power downes=3');
    const r = parseProbeTranscript([...first, ...copy(lines)].join('\r\n'), 'n1');
    expect(r.status).toBe('ok');
    expect(compareProbeReport(r, expected)).toEqual([]);
    expect(r.node).toEqual({ instanceId: 'iid-s.n1.0', hostname: 'n1' });
  });

  it('takes the second copy when a FILE line of the first was garbled', () => {
    const lines = body('n2');
    const first = copy(lines);
    first[4] = first[4]!.slice(0, 40) + '[  3.2] usb 1-1: new device' + first[4]!.slice(40);
    expect(parseProbeTranscript([...first, ...copy(lines)].join('\n'), 'n2').status).toBe('ok');
  });

  it('says the transcript is damaged when no copy matches its checksum', () => {
    const lines = body('n3');
    const bad = copy(lines).map((l) => (l.includes('FILE name=user-data') ? l.replace('user-data', 'user-dat4') : l));
    const r = parseProbeTranscript([...bad, ...bad].join('\n'), 'n3');
    expect(r.status).not.toBe('ok');
  });

  it('detects a dropped line through the line count even when the rest parses', () => {
    const lines = body('n4');
    const c = copy(lines);
    c.splice(3, 1); // the meta-data FILE line lost
    const r = parseProbeTranscript(c.join('\n'), 'n4');
    expect(r.status).toBe('error');
    expect(r.error).toMatch(/transcript (damaged|lost lines)/);
  });
});
