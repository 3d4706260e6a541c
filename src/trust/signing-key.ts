// Where the fleet signing key comes from, and which public key a manifest signature must be
// made with (the trust anchor).
//
// Trust anchor: CATALOGUE/signing.pub (one OpenSSH public key line, committed with the
// catalogue); while the catalogue has none, SECRETS/_signing/id_ed25519.pub.
// Private key: --signing-key FILE (BuildOptions.signingKeyFile), else $EDGEIMG_SIGNING_KEY (a
// path), else SECRETS/_signing/id_ed25519 (mode 0600, directory 0700). When there is no key at
// all and the catalogue pins none, build creates one there, once (never in the catalogue).
// `_signing` cannot be taken for a site: site ids start with [a-z0-9].
//
// Nothing here prints or logs private key bytes; errors name files only.

import { chmod, link, lstat, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { EnvironmentError } from '../util/diagnostics.js';
import { ageDecrypt, ageEncrypt, loadAgeIdentity } from '../secrets/age.js';
import {
  fingerprint,
  formatPrivateKey,
  generateKey,
  parsePrivateKey,
  parsePublicKeyFile,
  publicKeyLine,
  sameKey,
  SshFormatError,
  FLEET_PRINCIPAL,
  type SshPrivateKey,
  type SshPublicKey,
} from './sshsig.js';

export const SIGNING_PUB_NAME = 'signing.pub';
export const SIGNING_DIR_NAME = '_signing';
export const SIGNING_KEY_NAME = 'id_ed25519';

/** Largest key file read (an Ed25519 key file is about 400 bytes). */
const MAX_KEY_FILE = 64 * 1024;

export const catalogueSigningPub = (catalogueDir: string): string => join(catalogueDir, SIGNING_PUB_NAME);
export const secretsSigningKey = (secretsDir: string): string => join(secretsDir, SIGNING_DIR_NAME, SIGNING_KEY_NAME);
export const secretsSigningPub = (secretsDir: string): string => `${secretsSigningKey(secretsDir)}.pub`;

export const COMMIT_HINT = 'edgeimg secrets signing-key --public > catalogue/signing.pub';

/** The command that prints the public key to commit, with --secrets when it is not the default. */
export function commitHint(secretsDir: string): string {
  return resolve(secretsDir) === resolve('secrets') ? COMMIT_HINT : COMMIT_HINT.replace(' --public', ` --public --secrets ${secretsDir}`);
}

/** --require-secrets and no fleet key: exit 3, like missing site secrets. */
export class MissingSigningKeyError extends EnvironmentError {}

export interface TrustAnchor {
  key: SshPublicKey;
  /** The file it was read from. */
  path: string;
}

export interface FleetSigningKey {
  key: SshPrivateKey;
  /** Where the private key was read from (a path; never its contents). */
  path: string;
  anchor: TrustAnchor;
  created: boolean;
}

async function readSmall(path: string): Promise<string | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EnvironmentError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!st.isFile()) throw new EnvironmentError(`${path} is not a regular file`);
  if (st.size > MAX_KEY_FILE) throw new EnvironmentError(`${path} is ${st.size} bytes: not a key file`);
  return readFile(path, 'utf8');
}

async function readPublic(path: string): Promise<SshPublicKey | undefined> {
  const text = await readSmall(path);
  if (text === undefined) return undefined;
  try {
    return parsePublicKeyFile(text, path);
  } catch (err) {
    if (err instanceof SshFormatError) throw new EnvironmentError(err.message);
    throw err;
  }
}

async function readPrivate(path: string): Promise<SshPrivateKey | undefined> {
  const text = await readSmall(path);
  if (text === undefined) return undefined;
  if (process.platform !== 'win32') {
    const perm = (await stat(path)).mode & 0o777;
    if ((perm & 0o077) !== 0) {
      throw new EnvironmentError(`permissions ${perm.toString(8).padStart(4, '0')} for the fleet signing key ${path} are too open: chmod 600 ${path}`);
    }
  }
  try {
    return parsePrivateKey(text, path);
  } catch (err) {
    if (err instanceof SshFormatError) throw new EnvironmentError(err.message);
    throw err;
  }
}

/**
 * The public key a manifest's signature must verify with: CATALOGUE/signing.pub, else
 * SECRETS/_signing/id_ed25519.pub; undefined when neither exists.
 */
export async function resolveTrustAnchor(opts: { catalogueDir?: string; secretsDir?: string }): Promise<TrustAnchor | undefined> {
  const candidates = [
    ...(opts.catalogueDir !== undefined ? [catalogueSigningPub(opts.catalogueDir)] : []),
    ...(opts.secretsDir !== undefined ? [secretsSigningPub(opts.secretsDir)] : []),
  ];
  for (const path of candidates) {
    const key = await readPublic(path);
    if (key) return { key, path };
  }
  return undefined;
}

/** Where the trust anchor would be looked for, for messages. */
export function anchorPlaces(opts: { catalogueDir?: string; secretsDir?: string }): string {
  return [
    ...(opts.catalogueDir !== undefined ? [catalogueSigningPub(opts.catalogueDir)] : []),
    ...(opts.secretsDir !== undefined ? [secretsSigningPub(opts.secretsDir)] : []),
  ].join(' or ') || 'a catalogue signing.pub';
}

export interface LoadSigningKeyOptions {
  catalogueDir: string;
  secretsDir: string;
  /** --signing-key FILE */
  signingKeyFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Never create a key (--require-secrets). */
  mustExist?: boolean;
  log?: (line: string) => void;
  /**
   * The fleet's age recipients: when set, a key made in the secrets directory is stored
   * age-encrypted (SECRETS/_signing/id_ed25519.age), like site secrets, never in plaintext.
   */
  ageRecipients?: readonly string[];
}

/** SECRETS/_signing/id_ed25519.age: the fleet key, age-encrypted (fleets with age recipients). */
export const secretsSigningKeyAge = (secretsDir: string): string => `${secretsSigningKey(secretsDir)}.age`;

/** The fleet key stored age-encrypted in the secrets directory, decrypted in memory; undefined when absent. */
async function readPrivateAge(path: string, env: NodeJS.ProcessEnv): Promise<SshPrivateKey | undefined> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EnvironmentError(`cannot read the fleet signing key ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const identity = loadAgeIdentity(env, 'to decrypt the fleet signing key');
  const text = await ageDecrypt(data, path, identity);
  try {
    return parsePrivateKey(text, path);
  } catch (err) {
    if (err instanceof SshFormatError) throw new EnvironmentError(err.message);
    throw err;
  }
}

/** Loads (or, the first time, creates) the fleet signing key for a build. Once per build. */
export async function loadSigningKey(opts: LoadSigningKeyOptions): Promise<FleetSigningKey> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const pinnedPath = catalogueSigningPub(opts.catalogueDir);
  const pinned = await readPublic(pinnedPath);
  const explicit = opts.signingKeyFile ?? (env.EDGEIMG_SIGNING_KEY ? env.EDGEIMG_SIGNING_KEY : undefined);
  let keyPath = explicit !== undefined ? resolve(explicit) : secretsSigningKey(opts.secretsDir);
  let key = await readPrivate(keyPath);
  if (!key && explicit === undefined) {
    const agePath = secretsSigningKeyAge(opts.secretsDir);
    key = await readPrivateAge(agePath, env);
    if (key) keyPath = agePath;
  } else if (key && explicit === undefined && (opts.ageRecipients?.length ?? 0) > 0) {
    log(`the fleet signing key ${keyPath} is stored in plaintext although the fleet has age recipients: move it to ${secretsSigningKeyAge(opts.secretsDir)} (age -r … -o ${secretsSigningKeyAge(opts.secretsDir)} ${keyPath}, then delete ${keyPath})`);
  }
  let created = false;
  if (!key) {
    const how = opts.signingKeyFile !== undefined ? '--signing-key' : explicit !== undefined ? '$EDGEIMG_SIGNING_KEY' : undefined;
    if (how) throw new EnvironmentError(`the fleet signing key ${keyPath} (${how}) does not exist`);
    if (pinned) {
      throw new EnvironmentError(
        `the catalogue pins the fleet signing key ${pinnedPath} (${fingerprint(pinned)}), but its private key is not at ${keyPath}: ` +
          'restore it from your secret store there, or give --signing-key FILE or EDGEIMG_SIGNING_KEY',
      );
    }
    if (opts.mustExist) {
      throw new MissingSigningKeyError(`the fleet signing key is missing (${keyPath}) and existing secrets are required (--require-secrets or EDGEIMG_REQUIRE_SECRETS=1): refusing to create a new one`);
    }
    ({ key, created } = await createOnce(opts.secretsDir, opts.ageRecipients ?? []));
    if ((opts.ageRecipients?.length ?? 0) > 0) keyPath = secretsSigningKeyAge(opts.secretsDir);
  }
  if (pinned) {
    if (!sameKey(pinned, key.publicKey)) {
      throw new EnvironmentError(
        `the fleet signing key ${keyPath} (${fingerprint(key.publicKey)}) does not match the catalogue's ${pinnedPath} (${fingerprint(pinned)}): ` +
          'use the private key of the committed public key (--signing-key FILE), or commit the new public key',
      );
    }
    return { key, path: keyPath, anchor: { key: pinned, path: pinnedPath }, created };
  }
  // no catalogue pin: the secrets directory's public key is the anchor
  const pubPath = secretsSigningPub(opts.secretsDir);
  let anchorKey = await readPublic(pubPath);
  if (!anchorKey) {
    if (explicit === undefined) {
      await writeNewFile(pubPath, `${publicKeyLine(key.publicKey, FLEET_PRINCIPAL)}\n`, 0o644).catch(() => undefined);
      anchorKey = await readPublic(pubPath);
    }
    anchorKey ??= key.publicKey;
  }
  if (!sameKey(anchorKey, key.publicKey)) {
    throw new EnvironmentError(
      `the fleet signing key ${keyPath} (${fingerprint(key.publicKey)}) does not match ${pubPath} (${fingerprint(anchorKey)}), ` +
        `the fleet's public key while the catalogue pins none (${pinnedPath}): commit the public key of the key you mean as ${pinnedPath}, or sign with the matching key`,
    );
  }
  const hint = commitHint(opts.secretsDir);
  log(
    created
      ? `signing with a new fleet key; commit its public key: ${hint} (${fingerprint(key.publicKey)}; the private key is ${keyPath}: keep it with the site secrets)`
      : `signing with the fleet key ${fingerprint(key.publicKey)}; the catalogue pins none (${pinnedPath}): commit its public key: ${hint}`,
  );
  return { key, path: keyPath, anchor: { key: anchorKey, path: pubPath }, created };
}

/** Creates SECRETS/_signing/id_ed25519 unless another build got there first (then reads theirs). */
async function createOnce(secretsDir: string, recipients: readonly string[]): Promise<{ key: SshPrivateKey; created: boolean }> {
  const dir = join(secretsDir, SIGNING_DIR_NAME);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new EnvironmentError(`${dir} is not a directory`);
  if (process.platform !== 'win32' && (st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
  const fresh = generateKey(FLEET_PRINCIPAL);
  if (recipients.length > 0) {
    // encrypted in memory, written once: no plaintext copy ever reaches the disk
    const final = secretsSigningKeyAge(secretsDir);
    const won = await writeNewFile(final, Buffer.from(await ageEncrypt(formatPrivateKey(fresh), recipients)), 0o600);
    if (won) return { key: fresh, created: true };
    const theirs = await readPrivateAge(final, process.env);
    if (!theirs) throw new EnvironmentError(`${final} disappeared while being created`);
    return { key: theirs, created: false };
  }
  const final = secretsSigningKey(secretsDir);
  const won = await writeNewFile(final, formatPrivateKey(fresh), 0o600);
  if (won) return { key: fresh, created: true };
  const theirs = await readPrivate(final);
  if (!theirs) throw new EnvironmentError(`${final} disappeared while being created`);
  return { key: theirs, created: false };
}

/** Writes a complete file under `path` only if none exists: a temporary file, linked into place. */
async function writeNewFile(path: string, text: string | Uint8Array, mode: number): Promise<boolean> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
}
