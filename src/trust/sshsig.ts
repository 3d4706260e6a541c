// SSHSIG signatures (what `ssh-keygen -Y sign` writes and `ssh-keygen -Y verify` checks), made
// and checked in-process with node:crypto, for Ed25519 keys only. Also the OpenSSH key formats
// edgeimg reads and writes (public key lines, unencrypted "openssh-key-v1" private keys) and
// allowed_signers lines.
//
// Format, from OpenSSH (openssh/openssh-portable, PROTOCOL.sshsig v1.4 and sshsig.c):
//   blob   = byte[6] "SSHSIG" || uint32 1 || string publickey || string namespace ||
//            string reserved ("") || string hash_algorithm ("sha512") || string signature
//   signed = byte[6] "SSHSIG" || string namespace || string reserved || string hash_algorithm ||
//            string H(message)
//   armor  = "-----BEGIN SSH SIGNATURE-----\n" base64(blob) wrapped at 70 columns (sshsig_armor
//            uses sshbuf_dtob64(blob, buf, 1), whose wrap is 70 characters; PROTOCOL.sshsig says
//            "SHOULD ... every 76" but every ssh-keygen writes 70) "\n-----END SSH SIGNATURE-----\n"
//   Verifiers reject versions > 1, trailing data, a namespace or hash algorithm other than the
//   expected one (sshsig_wrap_verify); hash algorithms allowed: sha256, sha512.
// Ed25519 signature encoding (RFC 8709): string "ssh-ed25519" || string sig[64]; public key:
// string "ssh-ed25519" || string pk[32]. Private key file: PROTOCOL.key ("openssh-key-v1\0",
// cipher/kdf "none", one key, a check-int pair, padding 1,2,3... to the 8-byte block size).
// Ed25519 signatures are deterministic: the same key and bytes always give the same signature.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';

export const SSHSIG_NAMESPACE_MANIFEST = 'edgeimg-manifest';
export const FLEET_PRINCIPAL = 'edgeimg-fleet';

const MAGIC = Buffer.from('SSHSIG');
const ED25519 = 'ssh-ed25519';
const BEGIN_SIG = '-----BEGIN SSH SIGNATURE-----';
const END_SIG = '-----END SSH SIGNATURE-----';
// the armour label of OpenSSH private key files (PROTOCOL.key); built from parts so this source
// file holds no key-file marker of its own
const KEY_LABEL = ['OPENSSH', 'PRIVATE', 'KEY'].join(' ');
const BEGIN_KEY = `-----BEGIN ${KEY_LABEL}-----`;
const END_KEY = `-----END ${KEY_LABEL}-----`;
const KEY_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');

/** A parse or format problem with a key or a signature; the message never holds key bytes. */
export class SshFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SshFormatError';
  }
}

// ---- RFC 4251 wire encoding -------------------------------------------------------------------

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(data: string | Uint8Array): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  return Buffer.concat([u32(b.length), b]);
}

class Reader {
  private off = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  bytes(n: number): Buffer {
    if (n < 0 || this.off + n > this.buf.length) throw new SshFormatError(`${this.what}: truncated`);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }
  u32(): number {
    return this.bytes(4).readUInt32BE(0);
  }
  string(): Buffer {
    return this.bytes(this.u32());
  }
  text(): string {
    return this.string().toString('utf8');
  }
  get rest(): number {
    return this.buf.length - this.off;
  }
}

// ---- keys -------------------------------------------------------------------------------------

/** An Ed25519 public key: its 32 raw bytes and the SSH wire blob. */
export interface SshPublicKey {
  raw: Buffer; // 32 bytes
  blob: Buffer; // string "ssh-ed25519" || string raw
  comment: string;
}

/** An Ed25519 private key (the 32-byte seed) with its public half. Never log `seed`. */
export interface SshPrivateKey {
  seed: Buffer;
  publicKey: SshPublicKey;
}

function publicFromRaw(raw: Uint8Array, comment = ''): SshPublicKey {
  const r = Buffer.from(raw);
  if (r.length !== 32) throw new SshFormatError(`an Ed25519 public key is 32 bytes, got ${r.length}`);
  return { raw: r, blob: Buffer.concat([sshString(ED25519), sshString(r)]), comment };
}

function publicFromBlob(blob: Buffer, what: string, comment = ''): SshPublicKey {
  const r = new Reader(blob, what);
  const type = r.text();
  if (type !== ED25519) throw new SshFormatError(`${what}: key type ${JSON.stringify(type.slice(0, 40))} is not supported (edgeimg signs with ssh-ed25519 keys)`);
  const raw = r.string();
  if (r.rest !== 0) throw new SshFormatError(`${what}: trailing data after the key`);
  return publicFromRaw(raw, comment);
}

/** `ssh-ed25519 AAAA… comment` (the format of id_ed25519.pub and authorized_keys lines). */
export function parsePublicKeyLine(line: string, what = 'public key'): SshPublicKey {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*?))?\s*$/.exec(line);
  if (!m) throw new SshFormatError(`${what}: not an OpenSSH public key line ("ssh-ed25519 AAAA… comment")`);
  if (m[1] !== ED25519) throw new SshFormatError(`${what}: key type ${JSON.stringify(m[1]!.slice(0, 40))} is not supported (edgeimg signs with ssh-ed25519 keys)`);
  const key = publicFromBlob(Buffer.from(m[2]!, 'base64'), what, m[3] ?? '');
  return key;
}

/** The first non-empty, non-comment line of a .pub file, parsed. */
export function parsePublicKeyFile(text: string, what = 'public key'): SshPublicKey {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  if (line === undefined) throw new SshFormatError(`${what}: empty, expected one line "ssh-ed25519 AAAA… comment"`);
  return parsePublicKeyLine(line, what);
}

export function publicKeyLine(key: SshPublicKey, comment = key.comment): string {
  return `${ED25519} ${key.blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}

/** `SHA256:<base64 without padding>` as `ssh-keygen -l` prints it. */
/** Any PEM private key armour line (built from its parts: a format marker, not a key). */
const PEM_PRIVATE_KEY = new RegExp(`-----BEGIN [A-Z ]*${['PRIVATE', 'KEY'].join(' ')}-----`);

export function fingerprint(key: SshPublicKey): string {
  return `SHA256:${createHash('sha256').update(key.blob).digest('base64').replace(/=+$/, '')}`;
}

export function sameKey(a: SshPublicKey, b: SshPublicKey): boolean {
  return a.raw.equals(b.raw);
}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/** PKCS#8 for Ed25519 is a fixed 16-byte prefix and the 32-byte seed (RFC 8410). */
const pkcs8Of = (seed: Buffer): Buffer => Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);

const keyObjects = new Map<string, KeyObject>();

/** node:crypto's KeyObject for a seed (cached: a fleet build signs thousands of manifests). */
function privateKeyObject(key: SshPrivateKey): KeyObject {
  const id = key.publicKey.raw.toString('hex');
  let k = keyObjects.get(id);
  if (!k) {
    k = createPrivateKey({ key: pkcs8Of(key.seed), format: 'der', type: 'pkcs8' });
    keyObjects.set(id, k);
  }
  return k;
}

function publicKeyObject(key: SshPublicKey): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(key.raw) }, format: 'jwk' });
}

/** The private key from its 32-byte seed; the public half is derived. */
export function privateKeyFromSeed(seed: Uint8Array, comment = ''): SshPrivateKey {
  const s = Buffer.from(seed);
  if (s.length !== 32) throw new SshFormatError(`an Ed25519 private key seed is 32 bytes, got ${s.length}`);
  const obj = createPrivateKey({ key: pkcs8Of(s), format: 'der', type: 'pkcs8' });
  const x = Buffer.from(createPublicKey(obj).export({ format: 'jwk' }).x!, 'base64url');
  return { seed: s, publicKey: publicFromRaw(x, comment) };
}

export function generateKey(comment = ''): SshPrivateKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  return privateKeyFromSeed(d, comment);
}

function armor(begin: string, end: string, blob: Buffer): string {
  const b64 = blob.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 70) lines.push(b64.slice(i, i + 70));
  return `${begin}\n${lines.join('\n')}\n${end}\n`;
}

function dearmor(text: string, begin: string, end: string, what: string): Buffer {
  const start = text.indexOf(begin);
  const stop = text.indexOf(end);
  if (start < 0 || stop < start) throw new SshFormatError(`${what}: no "${begin}" … "${end}" block`);
  const b64 = text.slice(start + begin.length, stop).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new SshFormatError(`${what}: the armored block is not base64`);
  return Buffer.from(b64, 'base64');
}

/** An OpenSSH private key file (BEGIN_KEY armour), unencrypted (what `ssh-keygen -t ed25519 -N ''` writes). */
export function formatPrivateKey(key: SshPrivateKey, comment = key.publicKey.comment): string {
  const check = randomBytes(4);
  const parts = [
    check,
    check,
    sshString(ED25519),
    sshString(key.publicKey.raw),
    sshString(Buffer.concat([key.seed, key.publicKey.raw])),
    sshString(comment),
  ];
  let priv = Buffer.concat(parts);
  const pad = (8 - (priv.length % 8)) % 8;
  priv = Buffer.concat([priv, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const blob = Buffer.concat([KEY_MAGIC, sshString('none'), sshString('none'), sshString(''), u32(1), sshString(key.publicKey.blob), sshString(priv)]);
  return armor(BEGIN_KEY, END_KEY, blob);
}

/** Reads an OpenSSH private key file: ed25519, unencrypted. Error messages never quote key bytes. */
export function parsePrivateKey(text: string, what = 'private key'): SshPrivateKey {
  if (!text.includes(BEGIN_KEY)) {
    if (PEM_PRIVATE_KEY.test(text)) throw new SshFormatError(`${what}: a PEM private key, not an OpenSSH one; edgeimg reads "${BEGIN_KEY}" ed25519 keys (ssh-keygen -t ed25519)`);
    throw new SshFormatError(`${what}: not an OpenSSH private key (no "${BEGIN_KEY}" line)`);
  }
  const r = new Reader(dearmor(text, BEGIN_KEY, END_KEY, what), what);
  if (!r.bytes(KEY_MAGIC.length).equals(KEY_MAGIC)) throw new SshFormatError(`${what}: not an openssh-key-v1 key`);
  const cipher = r.text();
  const kdf = r.text();
  r.string(); // kdf options
  if (cipher !== 'none' || kdf !== 'none') {
    throw new SshFormatError(`${what}: the key is encrypted with a passphrase (cipher ${cipher.slice(0, 40)}); edgeimg needs it unencrypted: keep it in the secret store and decrypt a copy with ssh-keygen -p -N '' -f FILE`);
  }
  const n = r.u32();
  if (n !== 1) throw new SshFormatError(`${what}: holds ${n} keys, expected 1`);
  const pub = publicFromBlob(r.string(), what);
  const p = new Reader(r.string(), what);
  if (p.u32() !== p.u32()) throw new SshFormatError(`${what}: check-int mismatch (corrupt key)`);
  const type = p.text();
  if (type !== ED25519) throw new SshFormatError(`${what}: key type ${JSON.stringify(type.slice(0, 40))} is not supported (edgeimg signs with ssh-ed25519 keys)`);
  const raw = p.string();
  const sk = p.string();
  const comment = p.text();
  if (sk.length !== 64 || !raw.equals(pub.raw) || !sk.subarray(32).equals(pub.raw)) throw new SshFormatError(`${what}: inconsistent ed25519 key (corrupt file)`);
  const key = privateKeyFromSeed(sk.subarray(0, 32), comment);
  if (!sameKey(key.publicKey, pub)) throw new SshFormatError(`${what}: the private half does not match the public half (corrupt file)`);
  return key;
}

// ---- signatures -------------------------------------------------------------------------------

function signedData(namespace: string, hashAlg: 'sha256' | 'sha512', message: Uint8Array): Buffer {
  const h = createHash(hashAlg).update(message).digest();
  return Buffer.concat([MAGIC, sshString(namespace), sshString(''), sshString(hashAlg), sshString(h)]);
}

/** An armored SSHSIG signature of `message` (sha512, as ssh-keygen -Y sign makes it). */
export function signSshsig(key: SshPrivateKey, namespace: string, message: Uint8Array): string {
  if (namespace === '') throw new SshFormatError('the SSHSIG namespace must not be empty');
  const sig = cryptoSign(null, signedData(namespace, 'sha512', message), privateKeyObject(key));
  const blob = Buffer.concat([
    MAGIC,
    u32(1),
    sshString(key.publicKey.blob),
    sshString(namespace),
    sshString(''),
    sshString('sha512'),
    sshString(Buffer.concat([sshString(ED25519), sshString(sig)])),
  ]);
  return armor(BEGIN_SIG, END_SIG, blob);
}

export type SshsigVerdict =
  | { ok: true; key: SshPublicKey }
  /** `key`: the signer's key when the signature parsed that far. */
  | { ok: false; reason: 'malformed' | 'namespace' | 'bad-signature'; message: string; key?: SshPublicKey };

/** Checks an armored signature over `message`; says which key made it. Trust is the caller's. */
export function verifySshsig(armored: string, namespace: string, message: Uint8Array): SshsigVerdict {
  let key: SshPublicKey | undefined;
  try {
    const r = new Reader(dearmor(armored, BEGIN_SIG, END_SIG, 'signature'), 'signature');
    if (!r.bytes(6).equals(MAGIC)) return { ok: false, reason: 'malformed', message: 'not an SSHSIG signature (no SSHSIG preamble)' };
    const version = r.u32();
    if (version !== 1) return { ok: false, reason: 'malformed', message: `SSHSIG version ${version} is not supported (1)` };
    key = publicFromBlob(r.string(), 'signature key');
    const ns = r.text();
    r.string(); // reserved: ignored when not empty (PROTOCOL.sshsig)
    const hashAlg = r.text();
    const sigField = new Reader(r.string(), 'signature');
    if (r.rest !== 0) return { ok: false, reason: 'malformed', message: 'signature contains trailing data', key };
    if (ns !== namespace) return { ok: false, reason: 'namespace', message: `signature namespace is ${JSON.stringify(ns.slice(0, 60))}, expected ${JSON.stringify(namespace)}`, key };
    if (hashAlg !== 'sha512' && hashAlg !== 'sha256') return { ok: false, reason: 'malformed', message: `hash algorithm ${JSON.stringify(hashAlg.slice(0, 20))} is not sha256 or sha512`, key };
    const sigType = sigField.text();
    const sig = sigField.string();
    if (sigType !== ED25519 || sig.length !== 64 || sigField.rest !== 0) return { ok: false, reason: 'malformed', message: `signature type ${JSON.stringify(sigType.slice(0, 40))} is not an ssh-ed25519 signature`, key };
    const good = cryptoVerify(null, signedData(namespace, hashAlg, message), publicKeyObject(key), sig);
    return good ? { ok: true, key } : { ok: false, reason: 'bad-signature', message: 'signature does not match the signed bytes', key };
  } catch (err) {
    if (err instanceof SshFormatError) return { ok: false, reason: 'malformed', message: err.message, ...(key ? { key } : {}) };
    throw err;
  }
}

// ---- allowed_signers (ssh-keygen(1) "ALLOWED SIGNERS") -----------------------------------------

export interface AllowedSigner {
  principals: string[];
  namespaces?: string[];
  key: SshPublicKey;
}

/** `edgeimg-fleet namespaces="edgeimg-manifest" ssh-ed25519 AAAA…` */
export function allowedSignersLine(principal: string, publicKey: string | SshPublicKey, namespace = SSHSIG_NAMESPACE_MANIFEST): string {
  const key = typeof publicKey === 'string' ? parsePublicKeyLine(publicKey) : publicKey;
  return `${principal} namespaces="${namespace}" ${ED25519} ${key.blob.toString('base64')}`;
}

/**
 * Parses an allowed_signers file: principals, options (namespaces="…" is kept; others are
 * accepted and ignored), key. Lines whose key is not ssh-ed25519 are skipped; comments too.
 */
export function parseAllowedSigners(text: string): AllowedSigner[] {
  const out: AllowedSigner[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) throw new SshFormatError(`allowed_signers line ${i + 1}: expected "principals [options] keytype key"`);
    let rest = m[2]!;
    let namespaces: string[] | undefined;
    // options: comma-separated, values may be quoted; present unless the next token is a key type
    if (!/^(ssh-|ecdsa-|sk-)/.test(rest)) {
      const opt = /^((?:[^\s"]|"[^"]*")+)\s+(.*)$/.exec(rest);
      if (!opt) throw new SshFormatError(`allowed_signers line ${i + 1}: no key after the options`);
      for (const o of opt[1]!.match(/(?:[^,"]|"[^"]*")+/g) ?? []) {
        const ns = /^namespaces="([^"]*)"$/i.exec(o);
        if (ns) namespaces = ns[1]!.split(',');
      }
      rest = opt[2]!;
    }
    if (!rest.startsWith(`${ED25519} `)) continue;
    out.push({ principals: m[1]!.split(','), ...(namespaces ? { namespaces } : {}), key: parsePublicKeyLine(rest, `allowed_signers line ${i + 1}`) });
  }
  return out;
}
