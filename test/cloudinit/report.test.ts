// The reference NoCloud client's transcript and checks, without booting anything: the guest
// reporter's own emit() (run with the host's python3) against the TypeScript parser, console
// noise and torn lines, and the checks on real reports captured from client boots.

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asClientReport, checkCloudInitReport, crc32Hex, parseTranscript, renderTranscript, summariseWarnings, type CloudInitClientReport, type CloudInitExpectation } from '../../src/verify/cloudinit/index.js';
import { requireTool } from '../helpers/tools.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const reporter = join(here, '../../images/cloudinit/guest/edgeimg-cloudinit-report');
const fixture = (name: string): CloudInitClientReport => {
  const r = asClientReport(JSON.parse(readFileSync(join(here, 'fixtures', name), 'utf8')));
  if (typeof r === 'string') throw new Error(r);
  return r;
};
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

const talosExpect: CloudInitExpectation = {
  hostname: 'store-0412-cp-1', mac: '52:54:00:04:12:11', address: '10.4.12.11', prefix: 24, gateway: '10.4.12.1',
  dns: ['10.255.0.53', '1.1.1.1'], searchDomains: ['edge.acme-retail.example'], userData: 'not-cloud-config', medium: 'img',
};
const kairosExpect: CloudInitExpectation = {
  hostname: 'plant-0031-server-1', mac: 'a0:36:9f:31:00:11', address: '10.31.0.11', prefix: 24, gateway: '10.31.0.1',
  dns: ['10.255.0.53', '1.1.1.1'], searchDomains: ['edge.acme-retail.example'], userData: 'cloud-config', medium: 'iso',
};

describe('client transcript', () => {
  const doc = { schema: 1, nonce: 'n1', text: 'x'.repeat(500), list: Array.from({ length: 40 }, (_, i) => i) };

  it('crc32Hex is zlib/binascii CRC-32', () => {
    expect(crc32Hex('')).toBe('00000000');
    expect(crc32Hex('123456789')).toBe('cbf43926');
  });

  it('recovers the document from a clean transcript', () => {
    const r = parseTranscript(`boot noise\n${renderTranscript(doc, 'n1')}\n[  5.1] reboot: Power down\n`, 'n1');
    expect(r.problems).toEqual([]);
    expect(r.document).toEqual(doc);
    expect(r.copies).toBe(2);
  });

  it('takes a record torn by a kernel message in one copy from the other copy', () => {
    const lines = renderTranscript(doc, 'n1').split('\r\n');
    const i = lines.findIndex((l) => l.includes(' 3/'));
    // printk output landing in the middle of the line
    lines[i] = `${lines[i]!.slice(0, 40)}[   12.345678] ata2: hard resetting link${lines[i]!.slice(40)}`;
    const r = parseTranscript(lines.join('\r\n'), 'n1');
    expect(r.garbled).toBe(1);
    expect(r.problems).toEqual([]);
    expect(r.document).toEqual(doc);
  });

  it('accepts a record with console noise before the prefix (the CRC covers the record, not the line)', () => {
    const t = renderTranscript(doc, 'n1', 1).replace('\r\nEDGEIMG-CI R ', '\r\n[  9.9] random: crng init done EDGEIMG-CI R ');
    expect(parseTranscript(t, 'n1').document).toEqual(doc);
  });

  it('reports a record garbled in every copy instead of misparsing', () => {
    const t = renderTranscript(doc, 'n1').replace(/( 2\/\d+ .{5})/g, '$1#');
    const r = parseTranscript(t, 'n1');
    expect(r.document).toBeUndefined();
    expect(r.missing).toEqual([2]);
    expect(r.problems.join()).toMatch(/record\(s\) 2 of \d+ missing or garbled in every copy/);
  });

  it('refuses a transcript of another boot and says when there is none', () => {
    expect(parseTranscript(renderTranscript(doc, 'old'), 'n1').problems.join()).toMatch(/another boot \(nonce old/);
    expect(parseTranscript('[    0.000000] Linux version 6.1\n', 'n1').problems.join()).toMatch(/no report on the serial console/);
  });

  it.skipIf(!requireTool('python3'))('parses what the guest reporter (python3) prints', () => {
    const report = { schema: 1, nonce: 'py', s: 'quote " backslash \\ unicode é ☃ tab \t', n: [1.5, null, true], deep: { a: 'y'.repeat(1000) } };
    const script = [
      'import importlib.machinery, importlib.util, io, json, sys',
      `loader = importlib.machinery.SourceFileLoader('reporter', ${JSON.stringify(reporter)})`,
      "spec = importlib.util.spec_from_loader('reporter', loader)",
      'm = importlib.util.module_from_spec(spec); loader.exec_module(m)',
      'buf = io.StringIO(); m.emit(json.load(sys.stdin), "py", buf); sys.stdout.write(buf.getvalue())',
    ].join('\n');
    const out = spawnSync('python3', ['-c', script], { input: JSON.stringify(report), encoding: 'utf8' });
    expect(out.stderr).toBe('');
    expect(out.stdout).toMatch(/^\r\nEDGEIMG-CI BEGIN v1 nonce=py copy=1 records=\d+ bytes=\d+ sha256=[0-9a-f]{64}\r\n/);
    // every line short enough to be unlikely to be torn, and pure ASCII
    for (const l of out.stdout.split('\r\n')) expect(l.length).toBeLessThanOrEqual(150);
    expect(/^[\x00-\x7f]*$/.test(out.stdout)).toBe(true);
    const r = parseTranscript(out.stdout, 'py');
    expect(r.problems).toEqual([]);
    expect(r.document).toEqual(report);
  });
});

describe('client checks', () => {
  it('pass on a real Talos report (seed.img); the unhandled user-data warning is expected', () => {
    const r = fixture('talos-store-0412-cp-1-img.json');
    const checks = checkCloudInitReport(r, talosExpect);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.map((c) => c.check)).toEqual(['nocloud-datasource', 'status-done-no-errors', 'hostname', 'static-address', 'default-route', 'dns', 'user-data', 'log-no-errors']);
    const w = summariseWarnings(r, talosExpect);
    expect(w.unexpected).toEqual([]);
    expect(w.expected).toHaveLength(1);
    expect(w.expected[0]!.line).toMatch(/Unhandled non-multipart \(text\/x-not-multipart\) userdata: 'b'version: v1alpha1'/);
  });

  it('pass on a real Kairos report (seed.iso), with the user-data parsed as a cloud-config', () => {
    const r = fixture('kairos-plant-0031-server-1-iso.json');
    const checks = checkCloudInitReport(r, kairosExpect);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.find((c) => c.check === 'user-data')!.detail).toMatch(/parsed as cloud-config \(text\/cloud-config\); keys: .*hostname/);
  });

  it('the Talos warning is not excused for a Kairos seed, nor is a Talos seed taken for a cloud-config', () => {
    const talos = fixture('talos-store-0412-cp-1-img.json');
    expect(summariseWarnings(talos, { ...talosExpect, userData: 'cloud-config' }).unexpected).toHaveLength(1);
    expect(checkCloudInitReport(talos, { ...talosExpect, userData: 'cloud-config' }).find((c) => c.check === 'user-data')!.ok).toBe(false);
    const kairos = fixture('kairos-plant-0031-server-1-iso.json');
    expect(checkCloudInitReport(kairos, { ...kairosExpect, userData: 'not-cloud-config' }).find((c) => c.check === 'user-data')!.ok).toBe(false);
  });

  it('fail on the wrong medium, MAC, address, route, DNS, hostname and on status errors', () => {
    const base = fixture('talos-store-0412-cp-1-img.json');
    const failed = (r: CloudInitClientReport, e: Partial<CloudInitExpectation> = {}): string[] =>
      checkCloudInitReport(r, { ...talosExpect, ...e }).filter((c) => !c.ok).map((c) => c.check);
    expect(failed(base, { medium: 'iso' })).toEqual(['nocloud-datasource']);
    expect(failed(base, { mac: '52:54:00:04:12:99' })).toEqual(['static-address', 'default-route', 'dns']);
    expect(failed(base, { prefix: 16 })).toEqual(['static-address']);
    expect(failed(base, { gateway: '10.4.12.254' })).toEqual(['default-route']);
    expect(failed(base, { dns: ['1.1.1.1', '10.255.0.53'] })).toEqual(['dns']);
    expect(failed(base, { searchDomains: ['other.example'] })).toEqual(['dns']);
    expect(failed(base, { hostname: 'store-0412-cp-2' })).toEqual(['hostname']);

    const extra = clone(base);
    extra.network.interfaces!.find((i) => i.name === 'eth0')!.ipv4.push('10.4.12.99/24');
    expect(failed(extra)).toEqual(['static-address']);

    const err = clone(base);
    err.cloudInit.status = { ...err.cloudInit.status, status: 'error', errors: ["Unexpected error while running command.\nCommand: ['netplan', 'generate']"] };
    err.cloudInit.statusExit = 1;
    expect(failed(err)).toEqual(['status-done-no-errors']);

    const disabled = clone(base);
    disabled.cloudInit.status = { status: 'disabled', datasource: '', errors: [], boot_status_code: 'disabled-by-generator' };
    disabled.cloudInit.datasourceFile = null;
    disabled.cloudInit.disabledByGenerator = true;
    disabled.cloudInit.resultJson = null;
    const d = checkCloudInitReport(disabled, talosExpect).filter((c) => !c.ok);
    expect(d.map((c) => c.check)).toEqual(['nocloud-datasource', 'status-done-no-errors']);
    expect(d[0]!.detail).toMatch(/disabled by its generator/);

    const logged = clone(base);
    logged.log.counts = { WARNING: 1, ERROR: 1, CRITICAL: 0 };
    logged.log.lines = [...logged.log.lines!, '2026-01-01 00:00:00,000 - stages.py[ERROR]: Unable to render networking. Network config is likely broken: x'];
    expect(failed(logged)).toEqual(['log-no-errors']);
  });
});
