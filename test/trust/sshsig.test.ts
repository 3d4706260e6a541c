// SSHSIG made and checked in-process (src/trust/sshsig.ts), and interoperating both ways with
// the real OpenSSH ssh-keygen (Debian openssh-client): its -Y verify accepts our signatures
// and rejects a tampered message, our verifier accepts its -Y sign, it reads our private keys
// (-y), and we read its.
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  allowedSignersLine,
  fingerprint,
  formatPrivateKey,
  generateKey,
  parseAllowedSigners,
  parsePrivateKey,
  parsePublicKeyLine,
  privateKeyFromSeed,
  publicKeyLine,
  signSshsig,
  verifySshsig,
  SshFormatError,
} from '../../src/trust/sshsig.js';
import { requireTool } from '../helpers/tools.js';

const work = mkdtempSync(join(tmpdir(), 'edgeimg-sshsig-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const NS = 'edgeimg-manifest';
const hasSshKeygen = requireTool('ssh-keygen');

describe('SSHSIG in-process', () => {
  const key = generateKey('edgeimg-fleet');
  const msg = Buffer.from('{"schemaVersion":1}\n');

  it('round-trips, deterministically, and says which key signed', () => {
    const sig = signSshsig(key, NS, msg);
    expect(sig).toBe(signSshsig(key, NS, msg)); // Ed25519: the same bytes every build
    expect(sig.startsWith('-----BEGIN SSH SIGNATURE-----\n')).toBe(true);
    expect(sig.endsWith('\n-----END SSH SIGNATURE-----\n')).toBe(true);
    for (const line of sig.split('\n').slice(1, -2)) expect(line.length).toBeLessThanOrEqual(70);
    const v = verifySshsig(sig, NS, msg);
    expect(v.ok).toBe(true);
    expect(fingerprint(v.key!)).toBe(fingerprint(key.publicKey));
  });

  it('rejects a changed byte, another namespace and a malformed block', () => {
    const sig = signSshsig(key, NS, msg);
    const changed = Buffer.from(msg);
    changed[2]! ^= 1;
    expect(verifySshsig(sig, NS, changed)).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(verifySshsig(sig, 'file', msg)).toMatchObject({ ok: false, reason: 'namespace' });
    expect(verifySshsig('-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n', NS, msg)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verifySshsig('hello', NS, msg)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('writes and reads OpenSSH key formats; seeds give the same key', () => {
    const again = parsePrivateKey(formatPrivateKey(key));
    expect(again.seed.equals(key.seed)).toBe(true);
    expect(again.publicKey.comment).toBe('edgeimg-fleet');
    expect(privateKeyFromSeed(key.seed).publicKey.raw.equals(key.publicKey.raw)).toBe(true);
    const line = publicKeyLine(key.publicKey);
    expect(line).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]+=* edgeimg-fleet$/);
    expect(parsePublicKeyLine(line).raw.equals(key.publicKey.raw)).toBe(true);
    expect(() => parsePublicKeyLine('ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ x')).toThrow(/not supported/);
  });

  it('formats and parses allowed_signers lines', () => {
    const line = allowedSignersLine('edgeimg-fleet', publicKeyLine(key.publicKey));
    expect(line).toBe(`edgeimg-fleet namespaces="edgeimg-manifest" ${publicKeyLine(key.publicKey, '')}`);
    const parsed = parseAllowedSigners(`# fleet\n${line}\nops@example.org ssh-ed25519 ${key.publicKey.blob.toString('base64')} laptop\n`);
    expect(parsed).toHaveLength(2);
    expect(parsed[0]).toMatchObject({ principals: ['edgeimg-fleet'], namespaces: ['edgeimg-manifest'] });
    expect(parsed[1]!.principals).toEqual(['ops@example.org']);
    expect(parsed[1]!.namespaces).toBeUndefined();
  });
});

describe.runIf(hasSshKeygen)('interop with OpenSSH ssh-keygen', () => {
  const key = generateKey('edgeimg-fleet');
  const dir = join(work, 'interop');
  const f = (name: string): string => join(dir, name);
  const manifest = Buffer.from(`${JSON.stringify({ schemaVersion: 1, site: 'store-0412', artifacts: [] }, null, 2)}\n`);

  it('ssh-keygen -Y verify accepts our signature and rejects a tampered manifest', async () => {
    rmSync(dir, { recursive: true, force: true });
    await execa('mkdir', ['-p', dir]);
    writeFileSync(f('allowed_signers'), `${allowedSignersLine('edgeimg-fleet', key.publicKey)}\n`);
    writeFileSync(f('manifest.json'), manifest);
    writeFileSync(f('manifest.json.sig'), signSshsig(key, NS, manifest));
    const args = ['-Y', 'verify', '-f', f('allowed_signers'), '-I', 'edgeimg-fleet', '-n', NS, '-s', f('manifest.json.sig')];
    const good = await execa('ssh-keygen', args, { inputFile: f('manifest.json'), reject: false, all: true });
    expect(good.exitCode, good.all).toBe(0);
    expect(good.all).toContain(`Good "${NS}" signature for edgeimg-fleet with ED25519 key ${fingerprint(key.publicKey)}`);
    const tampered = Buffer.from(manifest);
    tampered[10]! ^= 1;
    writeFileSync(f('tampered.json'), tampered);
    const bad = await execa('ssh-keygen', args, { inputFile: f('tampered.json'), reject: false, all: true });
    expect(bad.exitCode).not.toBe(0);
    // and another namespace is refused too
    const ns = await execa('ssh-keygen', [...args.slice(0, 6), 'file', ...args.slice(7)], { inputFile: f('manifest.json'), reject: false, all: true });
    expect(ns.exitCode).not.toBe(0);
  });

  it('our verifier accepts a signature made by ssh-keygen -Y sign, and we read its private key', async () => {
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ops@example.org', '-f', f('their_key')]);
    writeFileSync(f('msg.json'), manifest);
    await execa('ssh-keygen', ['-Y', 'sign', '-f', f('their_key'), '-n', NS, f('msg.json')]);
    const sig = readFileSync(f('msg.json.sig'), 'utf8');
    const v = verifySshsig(sig, NS, manifest);
    expect(v.ok).toBe(true);
    const theirs = parsePublicKeyLine(readFileSync(f('their_key.pub'), 'utf8'));
    expect(v.key!.raw.equals(theirs.raw)).toBe(true);
    const parsed = parsePrivateKey(readFileSync(f('their_key'), 'utf8'));
    expect(parsed.publicKey.raw.equals(theirs.raw)).toBe(true);
    expect(parsed.publicKey.comment).toBe('ops@example.org');
    // byte-identical to what ssh-keygen signs with the same key: both are deterministic Ed25519
    expect(signSshsig(parsed, NS, manifest)).toBe(sig);
    const changed = Buffer.from(manifest);
    changed[0]! ^= 1;
    expect(verifySshsig(sig, NS, changed).ok).toBe(false);
  });

  it('ssh-keygen -y reads a private key we generated', async () => {
    writeFileSync(f('our_key'), formatPrivateKey(key), { mode: 0o600 });
    const r = await execa('ssh-keygen', ['-y', '-f', f('our_key')]);
    expect(r.stdout.trim()).toBe(publicKeyLine(key.publicKey));
    const l = await execa('ssh-keygen', ['-l', '-f', f('our_key')]);
    expect(l.stdout).toContain(fingerprint(key.publicKey));
  });

  it('refuses a passphrase-protected key with a clear message', async () => {
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse', '-f', f('locked')]);
    expect(() => parsePrivateKey(readFileSync(f('locked'), 'utf8'), 'locked')).toThrow(SshFormatError);
    expect(() => parsePrivateKey(readFileSync(f('locked'), 'utf8'), 'locked')).toThrow(/encrypted with a passphrase.*ssh-keygen -p/);
  });
});
