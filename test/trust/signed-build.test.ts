// Every built site carries manifest.json.sig (SSHSIG, namespace edgeimg-manifest, by the fleet
// key) and SHA256SUMS; both are byte-identical on a rebuild, check with the stock tools
// (ssh-keygen -Y verify, sha256sum -c), and `verify` / `inspect` fail for an unsigned manifest,
// another key, or a changed byte. Where the fleet key comes from: src/trust/signing-key.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { cpSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { runSigningKey } from '../../src/cli/secrets-signing.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';
import { requireTool } from '../helpers/tools.js';
import { fingerprint, formatPrivateKey, generateKey, parsePublicKeyFile, publicKeyLine } from '../../src/trust/sshsig.js';

type Run = { code: number; out: string; err: string };
async function run(args: string[]): Promise<Run> {
  let o = '';
  let e = '';
  const code = await main(args, { out: (s) => (o += s), err: (s) => (e += s) });
  return { code, out: o, err: e };
}
async function signingKey(args: string[]): Promise<Run> {
  let o = '';
  let e = '';
  const code = await runSigningKey(args, { out: (s) => (o += s), err: (s) => (e += s) });
  return { code, out: o, err: e };
}

const SITE = 'store-0007'; // one node: the cheapest site to build
let cat: CatalogueCopy;
let work: string;
const secrets = (): string => join(work, 'secrets');
const site = (out: string): string => join(work, out, SITE);
const build = (out: string, ...extra: string[]): Promise<Run> =>
  run(['build', '--site', SITE, '--catalogue', cat.catalogue, '--out', join(work, out), '--secrets', secrets(), ...extra]);
const verifyCli = (out: string, ...extra: string[]): Promise<Run> =>
  run(['verify', '--site', SITE, '--catalogue', cat.catalogue, '--out', join(work, out), '--secrets', secrets(), '--json', ...extra]);
const failures = (r: Run): string[] =>
  (JSON.parse(r.out) as { sites: Array<{ results: Array<{ ok: boolean; check: string; message: string }> }> }).sites.flatMap((s) => s.results.filter((x) => !x.ok).map((x) => `${x.check}: ${x.message}`));

beforeAll(async () => {
  cat = copyCatalogue();
  work = join(cat.root, 'work');
  const r = await build('out1');
  expect(r.code, r.err).toBe(0);
  expect(r.err).toContain('signing with a new fleet key; commit its public key: edgeimg secrets signing-key --public');
  const again = await build('out2');
  expect(again.code, again.err).toBe(0);
  expect(again.err).not.toContain('new fleet key');
}, 120_000);
afterAll(() => cat?.cleanup());

describe('signed manifests', () => {
  it('keeps the fleet key in SECRETS/_signing (0600 in 0700), never in the catalogue', () => {
    const key = join(secrets(), '_signing', 'id_ed25519');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(statSync(join(secrets(), '_signing')).mode & 0o777).toBe(0o700);
    expect(existsSync(`${key}.pub`)).toBe(true);
    expect(existsSync(join(cat.catalogue, 'signing.pub'))).toBe(false);
  });

  it('writes manifest.json.sig and SHA256SUMS byte-identical on a rebuild, listed nowhere in the manifest', () => {
    for (const name of ['manifest.json', 'manifest.json.sig', 'SHA256SUMS']) {
      expect(readFileSync(join(site('out2'), name)), name).toEqual(readFileSync(join(site('out1'), name)));
    }
    const m = JSON.parse(readFileSync(join(site('out1'), 'manifest.json'), 'utf8')) as { artifacts: Array<{ path: string; secret: boolean }> };
    expect(m.artifacts.map((a) => a.path)).not.toContain('manifest.json.sig');
    expect(m.artifacts.map((a) => a.path)).not.toContain('SHA256SUMS');
    const sums = readFileSync(join(site('out1'), 'SHA256SUMS'), 'utf8').trimEnd().split('\n');
    const paths = sums.map((l) => /^[0-9a-f]{64} {2}(\S+)$/.exec(l)![1]!);
    expect(paths).toEqual([...m.artifacts.filter((a) => !a.secret).map((a) => a.path), 'manifest.json'].sort());
    for (const secret of m.artifacts.filter((a) => a.secret)) expect(paths).not.toContain(secret.path);
  });

  it.runIf(requireTool('sha256sum'))('sha256sum -c SHA256SUMS passes in the site directory', async () => {
    const r = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: site('out1'), reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toContain('manifest.json: OK');
  });

  it.runIf(requireTool('ssh-keygen'))('ssh-keygen -Y verify accepts the signature with the printed allowed_signers line', async () => {
    const line = await signingKey(['--allowed-signers', '--catalogue', cat.catalogue, '--secrets', secrets()]);
    expect(line.code, line.err).toBe(0);
    expect(line.out).toMatch(/^edgeimg-fleet namespaces="edgeimg-manifest" ssh-ed25519 AAAA\S+\n$/);
    expect(line.out + line.err).not.toContain('PRIVATE');
    writeFileSync(join(work, 'allowed_signers'), line.out);
    const args = ['-Y', 'verify', '-f', join(work, 'allowed_signers'), '-I', 'edgeimg-fleet', '-n', 'edgeimg-manifest', '-s', join(site('out1'), 'manifest.json.sig')];
    const good = await execa('ssh-keygen', args, { inputFile: join(site('out1'), 'manifest.json'), reject: false, all: true });
    expect(good.exitCode, good.all).toBe(0);
    writeFileSync(join(work, 'tampered.json'), readFileSync(join(site('out1'), 'manifest.json'), 'utf8').replace('"schemaVersion": 1', '"schemaVersion":  1'));
    const bad = await execa('ssh-keygen', args, { inputFile: join(work, 'tampered.json'), reject: false, all: true });
    expect(bad.exitCode).not.toBe(0);
    const pub = await signingKey(['--public', '--catalogue', cat.catalogue, '--secrets', secrets()]);
    expect(pub.out).toBe(readFileSync(join(secrets(), '_signing', 'id_ed25519.pub'), 'utf8'));
  });

  it('verify passes a signed site, and fails unsigned, another key and a changed byte', async () => {
    const ok = await verifyCli('out1');
    expect(failures(ok)).toEqual([]);
    expect(ok.code).toBe(0);

    cpSync(site('out1'), site('unsigned'), { recursive: true });
    rmSync(join(site('unsigned'), 'manifest.json.sig'));
    const unsigned = await verifyCli('unsigned');
    expect(unsigned.code).toBe(1);
    expect(failures(unsigned)).toEqual([expect.stringMatching(/^signature: manifest\.json is not signed/)]);

    cpSync(site('out1'), site('changed'), { recursive: true });
    const mf = join(site('changed'), 'manifest.json');
    writeFileSync(mf, readFileSync(mf, 'utf8').replace('"schemaVersion": 1', '"schemaVersion":  1')); // same JSON, one byte more
    const changed = await verifyCli('changed');
    expect(changed.code).toBe(1);
    expect(failures(changed)).toEqual([expect.stringMatching(/^signature: signature does not match manifest\.json/)]);

    // the catalogue pins another fleet key: our signature is not the fleet's
    const other = generateKey('other');
    const wrong = copyCatalogue();
    try {
      writeFileSync(join(wrong.catalogue, 'signing.pub'), `${publicKeyLine(other.publicKey)}\n`);
      const ours = parsePublicKeyFile(readFileSync(join(secrets(), '_signing', 'id_ed25519.pub'), 'utf8'));
      const r = await run(['verify', '--site', SITE, '--catalogue', wrong.catalogue, '--out', join(work, 'out1'), '--secrets', secrets(), '--json']);
      expect(r.code).toBe(1);
      expect(failures(r)).toEqual([`signature: manifest.json is signed by ${fingerprint(ours)}, not the fleet key ${fingerprint(other.publicKey)} (${join(wrong.catalogue, 'signing.pub')})`]);
    } finally {
      wrong.cleanup();
    }
  });

  it('verify with no trust anchor anywhere fails, saying where it looked', async () => {
    const r = await run(['verify', '--site', SITE, '--catalogue', join(work, 'none'), '--out', join(work, 'out1'), '--secrets', join(work, 'no-secrets'), '--json']);
    expect(r.code).toBe(1);
    expect(failures(r)).toEqual([expect.stringMatching(/^signature: cannot check the signature of manifest\.json: no fleet public key \(looked for .*signing\.pub or .*id_ed25519\.pub\)/)]);
  });

  it('inspect says the manifest is signed by the fleet key, and refuses another key', async () => {
    const iso = join(site('out1'), 'nodes', 'cp-1', 'seed.iso');
    const ok = await run(['inspect', iso, '--out', join(work, 'out1'), '--catalogue', cat.catalogue, '--secrets', secrets(), '--json']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.err).toContain(`ok: ${SITE}: manifest.json is signed by the fleet key`);
    const bad = await run(['inspect', iso, '--out', join(work, 'unsigned'), '--catalogue', cat.catalogue, '--secrets', secrets()]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(`PROBLEM: ${SITE}: manifest.json is not signed`);
  });
});

describe('where the fleet key comes from', () => {
  it('a committed signing.pub pins the key: a matching key signs, another one is exit 3 naming both files', async () => {
    const pinned = copyCatalogue();
    try {
      const pub = (await signingKey(['--public', '--secrets', secrets(), '--catalogue', join(work, 'none')])).out;
      writeFileSync(join(pinned.catalogue, 'signing.pub'), pub);
      const ok = await run(['build', '--site', SITE, '--catalogue', pinned.catalogue, '--out', join(work, 'pinned'), '--secrets', secrets()]);
      expect(ok.code, ok.err).toBe(0);
      expect(ok.err).not.toContain('commit its public key');
      expect(readFileSync(join(work, 'pinned', SITE, 'manifest.json.sig'))).toEqual(readFileSync(join(site('out1'), 'manifest.json.sig')));
      // a technician's laptop: the catalogue alone is the trust anchor, no secrets
      const v = await run(['verify', '--site', SITE, '--catalogue', pinned.catalogue, '--out', join(work, 'pinned'), '--secrets', join(work, 'no-secrets'), '--json']);
      expect(failures(v)).toEqual([]);

      const stranger = join(work, 'stranger');
      writeFileSync(stranger, formatPrivateKey(generateKey('stranger')), { mode: 0o600 });
      const bad = await run(['build', '--site', SITE, '--catalogue', pinned.catalogue, '--out', join(work, 'pinned2'), '--secrets', secrets(), '--signing-key', stranger]);
      expect(bad.code).toBe(3);
      expect(bad.err).toContain(stranger);
      expect(bad.err).toContain(join(pinned.catalogue, 'signing.pub'));
      expect(bad.err).not.toContain('PRIVATE KEY');

      // no private key anywhere for a pinned catalogue: exit 3, never a new key
      const none = await run(['build', '--site', SITE, '--catalogue', pinned.catalogue, '--out', join(work, 'pinned3'), '--secrets', join(work, 'empty-secrets')]);
      expect(none.code).toBe(3);
      expect(none.err).toContain(join(pinned.catalogue, 'signing.pub'));
      expect(existsSync(join(work, 'empty-secrets', '_signing', 'id_ed25519'))).toBe(false);
    } finally {
      pinned.cleanup();
    }
  });

  it.runIf(requireTool('ssh-keygen'))('--signing-key takes a key made by ssh-keygen; an encrypted one is exit 3', async () => {
    const key = join(work, 'ops_key');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ops', '-f', key]);
    // another key than the one the secrets directory holds: refused while the catalogue pins none
    const clash = await build('opskey', '--signing-key', key);
    expect(clash.code).toBe(3);
    expect(clash.err).toContain(join(secrets(), '_signing', 'id_ed25519.pub'));
    // with a secrets directory of its own, it signs
    const r = await run(['build', '--site', SITE, '--catalogue', cat.catalogue, '--out', join(work, 'opskey'), '--secrets', join(work, 'ops-secrets'), '--signing-key', key]);
    expect(r.code, r.err).toBe(0);
    writeFileSync(join(work, 'ops_allowed'), `edgeimg-fleet namespaces="edgeimg-manifest" ${readFileSync(`${key}.pub`, 'utf8')}`);
    const v = await execa('ssh-keygen', ['-Y', 'verify', '-f', join(work, 'ops_allowed'), '-I', 'edgeimg-fleet', '-n', 'edgeimg-manifest', '-s', join(site('opskey'), 'manifest.json.sig')], {
      inputFile: join(site('opskey'), 'manifest.json'),
      reject: false,
      all: true,
    });
    expect(v.exitCode, v.all).toBe(0);

    const locked = join(work, 'locked_key');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'passphrase', '-f', locked]);
    const enc = await build('locked', '--signing-key', locked);
    expect(enc.code).toBe(3);
    expect(enc.err).toMatch(/encrypted with a passphrase/);
  });

  it('--require-secrets never creates a fleet key', async () => {
    const empty = join(work, 'req-secrets');
    const r = await run(['build', '--site', SITE, '--catalogue', cat.catalogue, '--out', join(work, 'req'), '--secrets', empty, '--require-secrets']);
    expect(r.code).toBe(3);
    expect(existsSync(join(empty, '_signing', 'id_ed25519'))).toBe(false);
  });
});
