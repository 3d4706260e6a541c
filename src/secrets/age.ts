// age encryption of site secrets at rest (age-encryption.org/v1, binary format), through the
// `age-encryption` package (typage, by age's author). See docs/secrets.md and docs/decisions.md.
//
// Encryption happens in memory: the plaintext never touches the disk. Messages never quote key
// material: the library's own error messages can quote an identity line, so they are replaced.
// The library is loaded on first use only: `validate` checks recipients without it.

import { readFileSync, statSync } from 'node:fs';
import { EnvironmentError } from '../util/diagnostics.js';

/** Environment variables naming the identity file, in order of precedence. */
export const AGE_IDENTITY_VARS = ['EDGEIMG_AGE_IDENTITY', 'SOPS_AGE_KEY_FILE'] as const;

/** The binary age header's first line: how an encrypted store is recognised. */
export const AGE_MAGIC = 'age-encryption.org/v1\n';

// ---------------------------------------------------------------------------------------------
// bech32 (BIP 173), enough to check an age recipient's shape and checksum

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i]!;
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (const c of hrp) out.push(c.charCodeAt(0) >> 5);
  out.push(0);
  for (const c of hrp) out.push(c.charCodeAt(0) & 31);
  return out;
}

/** Decoded bech32 data part (5-bit groups, checksum removed), or undefined if malformed. */
function bech32Decode(s: string, hrp: string): number[] | undefined {
  if (s !== s.toLowerCase()) return undefined;
  const sep = s.lastIndexOf('1');
  if (sep < 1 || s.slice(0, sep) !== hrp) return undefined;
  const data: number[] = [];
  for (const c of s.slice(sep + 1)) {
    const v = CHARSET.indexOf(c);
    if (v < 0) return undefined;
    data.push(v);
  }
  if (data.length < 6) return undefined;
  if (polymod([...hrpExpand(hrp), ...data]) !== 1) return undefined;
  return data.slice(0, -6);
}

/** Why `s` is not an age X25519 recipient (age1 + bech32 of 32 bytes), or undefined if it is one. */
export function ageRecipientProblem(s: string): string | undefined {
  if (!s.startsWith('age1')) return 'must start with "age1"';
  if (!/^age1[02-9ac-hj-np-z]{58}$/.test(s)) return 'must be "age1" followed by 58 lower-case bech32 characters (as age-keygen prints it)';
  const data = bech32Decode(s, 'age');
  if (data === undefined) return 'has a bad bech32 checksum (a typo?)';
  if ((data.length * 5) >> 3 !== 32) return 'does not encode a 32-byte X25519 key';
  return undefined;
}

export function isAgeRecipient(s: string): boolean {
  return ageRecipientProblem(s) === undefined;
}

// ---------------------------------------------------------------------------------------------
// Identity

export interface AgeIdentity {
  /** The variable that named the file, e.g. EDGEIMG_AGE_IDENTITY. */
  variable: string;
  path: string;
  keys: string[];
}

/** Where the identity comes from, without reading it: undefined when no variable is set. */
export function ageIdentitySource(env: NodeJS.ProcessEnv = process.env): { variable: string; path: string } | undefined {
  for (const variable of AGE_IDENTITY_VARS) {
    const path = env[variable];
    if (path !== undefined && path !== '') return { variable, path };
  }
  return undefined;
}

const HOW = `set ${AGE_IDENTITY_VARS[0]} (or ${AGE_IDENTITY_VARS[1]}) to an age identity file, as age-keygen writes it`;

/** Read the identity file named by the environment. Throws EnvironmentError (exit 3) naming the variable and path. */
export function loadAgeIdentity(env: NodeJS.ProcessEnv = process.env, why = 'to decrypt site secrets'): AgeIdentity {
  const src = ageIdentitySource(env);
  if (!src) throw new EnvironmentError(`an age identity is needed ${why}, but none is configured: ${HOW}`);
  const { variable, path } = src;
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new EnvironmentError(`${variable}=${path}: not a regular file; ${HOW}`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof EnvironmentError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new EnvironmentError(`${variable}=${path}: cannot read the age identity file (${code}); ${HOW}`);
  }
  const keys: string[] = [];
  let lineNo = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!line.startsWith('AGE-SECRET-KEY-1')) {
      throw new EnvironmentError(`${variable}=${path}: line ${lineNo} is not an age identity (AGE-SECRET-KEY-1...); plugin and SSH identities are not supported`);
    }
    keys.push(line);
  }
  if (keys.length === 0) throw new EnvironmentError(`${variable}=${path}: holds no age identity (AGE-SECRET-KEY-1...); ${HOW}`);
  return { variable, path, keys };
}

// ---------------------------------------------------------------------------------------------
// Encrypt / decrypt

/** Encrypt `plaintext` to every recipient (binary age format). */
export async function ageEncrypt(plaintext: string, recipients: readonly string[]): Promise<Uint8Array> {
  if (recipients.length === 0) throw new Error('internal error: age encryption needs at least one recipient');
  const { Encrypter } = await import('age-encryption');
  const e = new Encrypter();
  for (const r of recipients) {
    const problem = ageRecipientProblem(r);
    if (problem) throw new EnvironmentError(`age recipient ${JSON.stringify(r.slice(0, 12))}… ${problem}`);
    e.addRecipient(r);
  }
  return e.encrypt(plaintext);
}

/**
 * Decrypt `data` (read from `file`) with `identity`. A wrong identity, a damaged file or any
 * other failure is an EnvironmentError naming the file, the variable and the identity path.
 */
export async function ageDecrypt(data: Uint8Array, file: string, identity: AgeIdentity): Promise<string> {
  const { Decrypter, armor } = await import('age-encryption');
  const d = new Decrypter();
  try {
    for (const k of identity.keys) d.addIdentity(k);
  } catch {
    throw new EnvironmentError(`${identity.variable}=${identity.path}: an identity in the file is malformed (bad bech32 checksum?)`);
  }
  const head = Buffer.from(data.subarray(0, AGE_MAGIC.length)).toString('latin1');
  const armored = Buffer.from(data.subarray(0, 40)).toString('latin1').startsWith('-----BEGIN AGE ENCRYPTED FILE-----');
  if (head !== AGE_MAGIC && !armored) throw new EnvironmentError(`${file}: not an age-encrypted file`);
  let bytes = data;
  if (armored) {
    try {
      bytes = armor.decode(Buffer.from(data).toString('latin1'));
    } catch {
      throw new EnvironmentError(`${file}: damaged ASCII-armored age file`);
    }
  }
  try {
    return await d.decrypt(bytes, 'text');
  } catch (err) {
    const msg = String((err as Error)?.message ?? '');
    const noMatch = /no identity matched/i.test(msg);
    throw new EnvironmentError(
      noMatch
        ? `${file}: cannot decrypt with the age identity in ${identity.variable}=${identity.path}: it is not one of the file's recipients ` +
            "(use the identity of a recipient listed in the fleet's spec.secrets.ageRecipients)"
        : `${file}: cannot decrypt with the age identity in ${identity.variable}=${identity.path}: the file is damaged or not for this identity`,
    );
  }
}
