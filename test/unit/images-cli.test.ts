// `edgeimg images`: every subcommand answers --help, misuse is exit 2, and network failures are
// exit-3 sentences naming the URL.
import { describe, expect, it } from 'vitest';

import { main } from '../../src/cli/main.js';
import { networkProblem } from '../../src/images/pull.js';
import { EnvironmentError } from '../../src/util/diagnostics.js';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

describe('edgeimg images --help', () => {
  it.each([[['images', '--help']], [['images', 'list', '--help']], [['images', 'import', '-h']], [['images', 'pull', '--help']]])('%j prints the images usage and exits 0', async (args) => {
    const r = await run(...args);
    expect(r.code).toBe(0);
    for (const sub of ['images list', 'images import --class NAME', 'images pull', '--locked', '--factory URL', 'images.lock']) expect(r.out).toContain(sub);
    expect(r.err).toBe('');
  });

  it('is listed in the general usage', async () => {
    expect((await run('--help')).out).toMatch(/edgeimg images list .*\n.*edgeimg images import .*\n.*edgeimg images pull/);
  });
});

describe('edgeimg images usage errors', () => {
  it.each([
    [['images'], 'needs a subcommand'],
    [['images', 'prune'], 'unknown images subcommand "prune"'],
    [['images', 'list', 'extra'], 'takes no arguments'],
    [['images', 'list', '--os', 'windows'], '--os accepts talos or kairos'],
    [['images', 'pull', '--only', 'all'], '--only accepts boot or netboot'],
    [['images', 'pull', '--timeout', '0'], '--timeout must be a positive number'],
    [['images', 'pull', '--factory', 'factory.talos.dev'], '--factory must be an http:// or https:// URL'],
    [['images', 'pull', '--pin', '--locked'], 'contradict'],
    [['images', 'import', '--class', 'x', '--bogus'], "Unknown option '--bogus'"],
  ])('%j exits 2: %s', async (args, message) => {
    const r = await run(...args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
  });

  it('prints one JSON failure object on stdout with --json', async () => {
    const r = await run('images', 'list', '--json', '--class', 'nope');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, error: 'usage', message: expect.stringContaining('unknown hardware class "nope"') });
  });
});

describe('network failures', () => {
  const url = 'https://factory.talos.dev/schematics';
  const fetchFailed = (code: string): Error => Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(`getaddrinfo ${code} factory.talos.dev`), { code }) });

  it.each([
    ['ENOTFOUND', 'cannot resolve factory.talos.dev (ENOTFOUND): no network or no DNS'],
    ['EAI_AGAIN', 'cannot resolve factory.talos.dev (EAI_AGAIN): no network or no DNS'],
    ['ECONNREFUSED', 'connection to factory.talos.dev refused (ECONNREFUSED)'],
    ['ENETUNREACH', 'factory.talos.dev is unreachable (ENETUNREACH): no network'],
    ['ECONNRESET', 'connection to factory.talos.dev was cut (ECONNRESET)'],
    ['UND_ERR_CONNECT_TIMEOUT', 'connection to factory.talos.dev timed out (UND_ERR_CONNECT_TIMEOUT)'],
    ['CERT_HAS_EXPIRED', 'TLS with factory.talos.dev failed (CERT_HAS_EXPIRED)'],
  ])('%s is an environment problem naming the URL', (code, message) => {
    const e = networkProblem(fetchFailed(code), url);
    expect(e).toBeInstanceOf(EnvironmentError);
    expect(e.message).toBe(`${url}: ${message}`);
  });

  it('finds the code inside an AggregateError (IPv4 and IPv6 both refused)', () => {
    const agg = Object.assign(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]), {});
    expect(networkProblem(Object.assign(new TypeError('fetch failed'), { cause: agg }), url).message).toContain('refused (ECONNREFUSED)');
  });
});
