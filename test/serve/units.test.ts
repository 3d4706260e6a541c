// `edgeimg serve`'s parsing and text rules, without a server: durations, listen addresses,
// MAC spellings, byte ranges, the Talos PXE command line, Host headers, iPXE message text and
// the route table's exact matching.

import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/util/diagnostics.js';
import { parseRange } from '../../src/serve/file-response.js';
import { baseUrl, ipxeText, notBootingScript, validHost } from '../../src/serve/ipxe.js';
import { canonicalMac, formatDuration, parseDuration, parseListen } from '../../src/serve/options.js';
import { talosMetalArgs, type PlannedNode } from '../../src/serve/plan.js';
import { matchRoute, routeTable, shownTarget } from '../../src/serve/routes.js';

describe('--for takes a duration with a unit', () => {
  it('accepts 90s, 30m, 2h and 1h30m', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(formatDuration(5_400_000)).toBe('1 h 30 min');
  });
  it('refuses a bare number, zero, a negative, more than 7 days and other units', () => {
    for (const bad of ['10', '0s', '-1h', '169h', '2d', '1.5h', 'h', '', '2h ']) expect(() => parseDuration(bad), bad).toThrow(UsageError);
  });
});

describe('--listen takes ADDR:PORT', () => {
  it('accepts IPv4, bracketed IPv6, localhost and port 0', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('0.0.0.0:0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseListen('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseListen('localhost:9000')).toEqual({ host: 'localhost', port: 9000 });
  });
  it('refuses a bare port, a host name, an unbracketed IPv6 address and ports over 65535', () => {
    for (const bad of ['8080', 'laptop:8080', '::1:8080', '10.0.0.1:65536', '10.0.0.1', '300.1.1.1:80', '[10.0.0.1]:80']) expect(() => parseListen(bad), bad).toThrow(UsageError);
  });
});

describe('MACs', () => {
  it('are aa-bb-cc-dd-ee-ff from the hyphen or colon form in either case, and nothing else', () => {
    expect(canonicalMac('52:54:00:04:12:1A')).toBe('52-54-00-04-12-1a');
    expect(canonicalMac('52-54-00-04-12-1a')).toBe('52-54-00-04-12-1a');
    for (const bad of ['52:54-00:04:12:1a', '525400041211', '52:54:00:04:12', '52:54:00:04:12:1g', '52%3A54%3A00%3A04%3A12%3A11']) expect(canonicalMac(bad), bad).toBeUndefined();
  });
});

describe('Range: bytes=', () => {
  const size = 1000;
  it('gives one range: first bytes, a span clipped at the end, open-ended, a suffix', () => {
    expect(parseRange('bytes=0-0', size)).toEqual({ kind: 'partial', start: 0, end: 0 });
    expect(parseRange('bytes=10-2000', size)).toEqual({ kind: 'partial', start: 10, end: 999 });
    expect(parseRange('bytes=990-', size)).toEqual({ kind: 'partial', start: 990, end: 999 });
    expect(parseRange('bytes=-10', size)).toEqual({ kind: 'partial', start: 990, end: 999 });
    expect(parseRange('bytes=-5000', size)).toEqual({ kind: 'partial', start: 0, end: 999 });
  });
  it('is unsatisfiable past the end, reversed, empty or malformed', () => {
    for (const bad of ['bytes=1000-', 'bytes=5-2', 'bytes=-0', 'bytes=-', 'bytes=abc', 'bytes=1e3-']) expect(parseRange(bad, size).kind, bad).toBe('unsatisfiable');
    expect(parseRange('bytes=0-', 0).kind).toBe('unsatisfiable');
  });
  it('ignores other units and several ranges (the whole file is sent)', () => {
    expect(parseRange('items=0-1', size).kind).toBe('full');
    expect(parseRange('bytes=0-1,5-6', size).kind).toBe('full');
    expect(parseRange(undefined, size).kind).toBe('full');
  });
});

describe('the Talos PXE command line', () => {
  it('is the pinned cmdline with talos.platform=metal and no talos.config of its own', () => {
    expect(talosMetalArgs('console=ttyS0 talos.platform=nocloud talos.config=http://elsewhere/ x=1\n')).toEqual(['console=ttyS0', 'talos.platform=metal', 'x=1']);
    expect(talosMetalArgs('console=ttyS0')).toEqual(['console=ttyS0', 'talos.platform=metal']);
  });
  it('refuses arguments iPXE would expand or split', () => {
    for (const bad of ['a=${net0/ip}', 'a || shell', 'a ; b', 'a="x"', 'a=`x`']) expect(talosMetalArgs(bad), bad).toHaveProperty('problem');
  });
});

describe('URLs in scripts', () => {
  it('come from a valid Host header, else from the socket', () => {
    expect(validHost('10.4.12.5:8080')).toBe(true);
    expect(validHost('laptop.local')).toBe(true);
    expect(validHost('[fd00::5]:8080')).toBe(true);
    for (const bad of ['', 'a b', 'x/y', 'h:99999', '${x}', 'a;b', '[zz::]:80', 'host:80:80', '-bad.example']) expect(validHost(bad), bad).toBe(false);
    expect(baseUrl('${evil}', '::ffff:10.4.12.5', 8080)).toBe('http://10.4.12.5:8080');
    expect(baseUrl(undefined, 'fd00::5', 8080)).toBe('http://[fd00::5]:8080');
  });
  it('messages on the node screen are plain words', () => {
    expect(ipxeText('a ${x} || b && c ; d # e\n"f"')).toBe('a ??x? ?? b ?? c , d ? e ?f?');
    const s = notBootingScript('t', ['MAC 52:54:00:04:12:11 ${evil}; shell']);
    expect(s).toContain('echo edgeimg: MAC 52:54:00:04:12:11 ??evil?, shell\n');
    expect(s).not.toContain('${evil}');
    expect(s.trimEnd().endsWith('exit 1')).toBe(true);
  });
});

describe('the route table', () => {
  const node = (mac: string, os: 'talos' | 'kairos'): PlannedNode => ({
    site: 's',
    node: 'n',
    os,
    version: 'v',
    arch: 'amd64',
    hardwareClass: 'c',
    mac,
    siteDir: '/nonexistent',
    config: { path: 'nodes/n/user-data', sha256: '0'.repeat(64), bytes: 1 },
    netboot: { kernel: {} as never, initrd: {} as never, ...(os === 'kairos' ? { rootfs: {} as never } : {}), args: [] },
  });
  const t = routeTable({ byMac: new Map([['52-54-00-04-12-11', node('52-54-00-04-12-11', 'talos')], ['a0-36-9f-31-00-11', node('a0-36-9f-31-00-11', 'kairos')]]) });
  it('holds exactly the routes of the served nodes', () => {
    expect([...t.keys()].sort()).toEqual([
      '/boot.ipxe',
      '/config/52-54-00-04-12-11',
      '/config/a0-36-9f-31-00-11',
      '/ipxe/52-54-00-04-12-11',
      '/ipxe/a0-36-9f-31-00-11',
      '/nb/52-54-00-04-12-11/initrd',
      '/nb/52-54-00-04-12-11/kernel',
      '/nb/a0-36-9f-31-00-11/initrd',
      '/nb/a0-36-9f-31-00-11/kernel',
      '/nb/a0-36-9f-31-00-11/squashfs',
    ]);
  });
  it('answers /ipxe/ for any MAC spelling and nothing else by pattern', () => {
    expect(matchRoute(t, '/ipxe/52:54:00:04:12:11')).toEqual({ kind: 'script', mac: '52-54-00-04-12-11' });
    expect(matchRoute(t, '/ipxe/DE-AD-BE-EF-00-01')).toEqual({ kind: 'script', mac: 'de-ad-be-ef-00-01' });
    for (const bad of ['/config/52:54:00:04:12:11', '/config/52-54-00-04-12-11/', '/nb/52-54-00-04-12-11/squashfs', '/ipxe/52-54-00-04-12-11/', '/ipxe/%35%32-54-00-04-12-11', '/boot.ipxe?x']) {
      expect(matchRoute(t, bad), bad).toBeUndefined();
    }
  });
  it('a request target in a log is printable and bounded', () => {
    expect(shownTarget('/a b\u001b[31m"x"é<>')).toBe('/a%20b%1B[31m%22x%22%C3%A9%3C%3E');
    expect(shownTarget(`/${'a'.repeat(500)}`)).toHaveLength(123);
  });
});
