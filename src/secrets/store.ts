// On-disk site secrets: <secretsDir>/<siteId>/secrets.yaml (dir 0700, file 0600), or, when the
// fleet names age recipients, <secretsDir>/<siteId>/secrets.yaml.age: the same YAML encrypted
// in memory to those recipients (binary age format; src/secrets/age.ts). A site has one form
// or the other; both at once (an interrupted conversion) is refused until
// `edgeimg secrets encrypt|decrypt` finishes it.
//
// Made once, never rotated: an existing file is always loaded as is. Creation is race-safe
// across processes: the complete file is written under a temporary name and published with
// link(2), which fails if the target exists; the loser discards its own secrets and loads
// the winner's. Nothing here writes to the console, and error messages name files and
// fields, never values.
//
// Talos file layout = `talosctl gen secrets` (lower-case keys, crt/key = base64 of PEM) plus
// an `edgeimg` block that talosctl ignores (its YAML decoding is not strict):
//
//   cluster:    { id, secret }
//   secrets:    { bootstraptoken, secretboxencryptionsecret }
//   trustdinfo: { token }
//   certs:      { etcd: {crt,key}, k8s: {crt,key}, k8saggregator: {crt,key},
//                 k8sserviceaccount: {key}, os: {crt,key} }
//   edgeimg:    { version: 1, kind: talos, admin: {crt,key} }
//
// Kairos file layout:
//
//   edgeimg: { version: 1, kind: kairos }
//   token:   <[a-z0-9]{6}.[a-z0-9]{16}>
//   ca:      { crt, key }            # base64 of PEM, as in the Talos file

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync } from 'node:fs';
import { chmod, link, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { EnvironmentError } from '../util/diagnostics.js';
import { ageDecrypt, ageEncrypt, loadAgeIdentity } from './age.js';
import { checkKairosPki, checkTalosPki, checkTalosTokens } from './check.js';
import { TOKEN_RE } from './generate.js';
import { generateKairosSecrets, generateTalosSecrets } from './generate.js';
import {
  PEM_CERTIFICATE,
  PEM_EC_PRIVATE,
  PEM_ED25519_PRIVATE,
  PEM_PKCS8_PRIVATE,
  PEM_RSA_PRIVATE,
  pemLabel,
} from './pem.js';
import type { CertAndKey, KairosSecrets, SiteSecrets, TalosSecrets } from './types.js';

export type SiteOs = 'talos' | 'kairos';

export const SECRETS_FILE_NAME = 'secrets.yaml';
export const SECRETS_AGE_FILE_NAME = 'secrets.yaml.age';
export const SECRETS_FORMAT_VERSION = 1;

const SITE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function siteSecretsPath(secretsDir: string, siteId: string): string {
  if (!SITE_ID_RE.test(siteId) || siteId.includes('..')) {
    throw new Error(`invalid site id ${JSON.stringify(siteId)}: cannot be used as a secrets directory name`);
  }
  return join(secretsDir, siteId, SECRETS_FILE_NAME);
}

/** Path of the site's age-encrypted secrets file. */
export function siteSecretsAgePath(secretsDir: string, siteId: string): string {
  return `${siteSecretsPath(secretsDir, siteId)}.age`;
}

// ---------------------------------------------------------------------------------------------
// Serialisation

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const certAndKey = (c: CertAndKey): { crt: string; key: string } => ({ crt: b64(c.crt), key: b64(c.key) });

const HEADER =
  'edgeimg site secrets: generated once, never rotated. Keep private; never commit.\n' +
  'Do not edit. File mode must stay 0600.';

export function serializeSiteSecrets(s: SiteSecrets): string {
  let body: unknown;
  if (s.kind === 'talos') {
    body = {
      cluster: { id: s.clusterId, secret: s.clusterSecret },
      secrets: { bootstraptoken: s.bootstrapToken, secretboxencryptionsecret: s.secretboxEncryptionSecret },
      trustdinfo: { token: s.trustdToken },
      certs: {
        etcd: certAndKey(s.certs.etcd),
        k8s: certAndKey(s.certs.k8s),
        k8saggregator: certAndKey(s.certs.k8sAggregator),
        k8sserviceaccount: { key: b64(s.certs.k8sServiceAccount.key) },
        os: certAndKey(s.certs.os),
      },
      edgeimg: { version: SECRETS_FORMAT_VERSION, kind: 'talos', admin: certAndKey(s.admin) },
    };
  } else {
    body = {
      edgeimg: { version: SECRETS_FORMAT_VERSION, kind: 'kairos' },
      token: s.token,
      ca: certAndKey(s.ca),
    };
  }
  const text = stringify(body, { indent: 4, lineWidth: 0, minContentWidth: 0 });
  return HEADER.split('\n').map((l) => `# ${l}\n`).join('') + text;
}

// ---------------------------------------------------------------------------------------------
// Parsing (messages never quote values)

function fail(file: string, msg: string): never {
  throw new EnvironmentError(`site secrets file ${file}: ${msg}`);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(file: string, root: Record<string, unknown>, path: string): string {
  let cur: unknown = root;
  for (const part of path.split('.')) {
    if (!isMap(cur)) fail(file, `missing field '${path}'`);
    cur = cur[part];
  }
  if (typeof cur !== 'string' || cur === '') fail(file, `field '${path}' is missing or not a non-empty string`);
  return cur;
}

const CRT_LABELS = [PEM_CERTIFICATE];
const KEY_LABELS = [PEM_ED25519_PRIVATE, PEM_EC_PRIVATE, PEM_RSA_PRIVATE, PEM_PKCS8_PRIVATE];

function pemField(file: string, root: Record<string, unknown>, path: string, labels: readonly string[]): string {
  const raw = field(file, root, path);
  const ok = /^[A-Za-z0-9+/]*={0,2}$/.test(raw) && raw.length % 4 === 0;
  const pem = ok ? Buffer.from(raw, 'base64').toString('utf8') : '';
  const label = pemLabel(pem);
  if (label === undefined || !labels.includes(label)) {
    fail(file, `field '${path}' is not base64-encoded PEM (${labels.join(' / ')})`);
  }
  return pem;
}

function pemPair(file: string, root: Record<string, unknown>, path: string): CertAndKey {
  return { crt: pemField(file, root, `${path}.crt`, CRT_LABELS), key: pemField(file, root, `${path}.key`, KEY_LABELS) };
}

/** Parse and validate a secrets file's text. `file` is only used in messages. */
/**
 * Parse a secrets file. Structure and PEM shapes are always checked; the full PKI consistency
 * check (parsing every key, including RSA-4096) costs ~8 ms per site, so it runs only on
 * request: `edgeimg verify` checks the PKI of what was built, and creation checks what it made.
 */
export function parseSiteSecrets(text: string, file: string, os: SiteOs | undefined, opts: { checkPki?: boolean } = {}): SiteSecrets {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    // The YAML library's messages can quote source lines, i.e. secrets: report a position only.
    const line = doc.errors[0]?.linePos?.[0]?.line;
    fail(file, `is not valid YAML${line ? ` (line ${line})` : ''}`);
  }
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: 0 });
  } catch {
    fail(file, 'is not valid YAML');
  }
  if (!isMap(root)) fail(file, 'top level is not a mapping');
  const meta = root['edgeimg'];
  if (!isMap(meta)) {
    if (isMap(root['certs'])) {
      fail(file, "looks like a plain 'talosctl gen secrets' bundle: it lacks the 'edgeimg' block with the admin client certificate");
    }
    fail(file, "lacks the 'edgeimg' block (kind, version)");
  }
  const kind = meta['kind'];
  if (kind !== 'talos' && kind !== 'kairos') fail(file, "field 'edgeimg.kind' must be 'talos' or 'kairos'");
  if (os !== undefined && kind !== os) {
    fail(
      file,
      `holds ${kind} secrets but the site is now a ${os} site; refusing to reuse or overwrite them ` +
        '(move the file aside yourself if the site really changed OS: the old cluster identity will be lost)',
    );
  }
  if (meta['version'] !== SECRETS_FORMAT_VERSION) {
    fail(file, `unsupported format version (expected edgeimg.version: ${SECRETS_FORMAT_VERSION})`);
  }

  let secrets: SiteSecrets;
  let problems: string[] = [];
  if (kind === 'talos') {
    const t: TalosSecrets = { ...talosBundleFields(file, root), admin: pemPair(file, root, 'edgeimg.admin') };
    secrets = t;
    problems = opts.checkPki ? checkTalosPki(t, { at: null }) : checkTalosTokens(t);
  } else {
    const k: KairosSecrets = { kind: 'kairos', token: field(file, root, 'token'), ca: pemPair(file, root, 'ca') };
    secrets = k;
    problems = opts.checkPki ? checkKairosPki(k, { at: null }) : TOKEN_RE.test(k.token) ? [] : ['token: not of the form [a-z0-9]{6}.[a-z0-9]{16}'];
  }
  if (problems.length > 0) fail(file, `is inconsistent:\n  - ${problems.join('\n  - ')}`);
  return secrets;
}

/**
 * Parse a plain `talosctl gen secrets` bundle (no `edgeimg` block): everything a TalosSecrets
 * holds except the admin client certificate, which the caller issues from the bundle's OS CA.
 * Messages name fields, never values.
 */
export function parseTalosctlBundle(text: string, file: string): Omit<TalosSecrets, 'admin'> {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    const line = doc.errors[0]?.linePos?.[0]?.line;
    fail(file, `is not valid YAML${line ? ` (line ${line})` : ''}`);
  }
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: 0 });
  } catch {
    fail(file, 'is not valid YAML');
  }
  if (!isMap(root) || !isMap(root['certs'])) fail(file, "is not a 'talosctl gen secrets' bundle (no 'certs' mapping)");
  const sec = root['secrets'];
  if (isMap(sec) && sec['aescbcencryptionsecret'] !== undefined) {
    fail(
      file,
      "has 'secrets.aescbcencryptionsecret' (a cluster made by an older Talos): edgeimg's secrets model has no place for it, " +
        'and importing without it would make the cluster unable to read its encrypted Kubernetes secrets; refusing',
    );
  }
  return talosBundleFields(file, root);
}

/** What a talosctl bundle holds, in the layout edgeimg's store shares with it (no admin cert). */
function talosBundleFields(file: string, root: Record<string, unknown>): Omit<TalosSecrets, 'admin'> {
  return {
    kind: 'talos',
    clusterId: field(file, root, 'cluster.id'),
    clusterSecret: field(file, root, 'cluster.secret'),
    bootstrapToken: field(file, root, 'secrets.bootstraptoken'),
    trustdToken: field(file, root, 'trustdinfo.token'),
    secretboxEncryptionSecret: field(file, root, 'secrets.secretboxencryptionsecret'),
    certs: {
      os: pemPair(file, root, 'certs.os'),
      k8s: pemPair(file, root, 'certs.k8s'),
      k8sAggregator: pemPair(file, root, 'certs.k8saggregator'),
      etcd: pemPair(file, root, 'certs.etcd'),
      k8sServiceAccount: { key: pemField(file, root, 'certs.k8sserviceaccount.key', KEY_LABELS) },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// File system

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Beside secrets.yaml: the sha256 of the last secrets file whose PKI passed the full check
 * (every certificate parses and matches its key, key types as Talos needs them). The check
 * costs ~8 ms per site, so a fleet rebuild pays it only when a secrets file changed.
 */
export const PKI_CHECKED_NAME = '.pki-checked';

async function pkiCheckedFor(file: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dirname(file), PKI_CHECKED_NAME), 'utf8')).trim();
  } catch {
    return undefined;
  }
}

async function markPkiChecked(file: string, digest: string): Promise<void> {
  const marker = join(dirname(file), PKI_CHECKED_NAME);
  const tmp = `${marker}.${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, `${digest}\n`, { mode: 0o600, flag: 'wx' });
    await rename(tmp, marker);
  } catch {
    await rm(tmp, { force: true }); // a cache: a read-only secrets directory only costs a re-check
  }
}

/** An existing file's bytes (undefined if absent), refusing non-regular files and, when `private`, group/other access. */
async function readStoreFile(file: string, requirePrivate: boolean): Promise<Buffer | undefined> {
  let fh;
  try {
    // O_NONBLOCK: a FIFO in place of the file must fail below (not a regular file), not hang here
    fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) fail(file, 'is not a regular file');
    const perm = st.mode & 0o777;
    if (requirePrivate && (perm & 0o077) !== 0) {
      throw new EnvironmentError(
        `permissions ${perm.toString(8).padStart(4, '0')} for site secrets file ${file} are too open: ` +
          `it must be accessible by its owner only. Fix with: chmod 600 '${file}'`,
      );
    }
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

async function parseChecked(text: string, file: string, os: SiteOs | undefined, digestOf: string | Uint8Array, checkPki: boolean | undefined): Promise<SiteSecrets> {
  if (!checkPki) return parseSiteSecrets(text, file, os);
  const digest = `sha256:${createHash('sha256').update(digestOf).digest('hex')}`;
  if ((await pkiCheckedFor(file)) === digest) return parseSiteSecrets(text, file, os);
  const secrets = parseSiteSecrets(text, file, os, { checkPki: true });
  await markPkiChecked(file, digest);
  return secrets;
}

/**
 * Read and parse an existing plaintext secrets file; undefined if it does not exist. With
 * `checkPki`, the whole PKI is checked (cached by the file's digest); an inconsistent store is
 * an EnvironmentError naming the field, never a value.
 */
export async function readSiteSecrets(file: string, os: SiteOs, opts: { checkPki?: boolean } = {}): Promise<SiteSecrets | undefined> {
  const bytes = await readStoreFile(file, true);
  if (bytes === undefined) return undefined;
  const text = bytes.toString('utf8');
  return parseChecked(text, file, os, text, opts.checkPki);
}

/** A site's stored secrets, in whichever form they are kept. */
export interface StoredSiteSecrets {
  secrets: SiteSecrets;
  /** The YAML exactly as stored (decrypted in memory when encrypted). */
  text: string;
  encrypted: boolean;
  /** The file holding them: secrets.yaml or secrets.yaml.age. */
  file: string;
  /** sha256 (hex) of that file's bytes as read: an incremental build's stamp of the store. */
  fileSha256: string;
}

export interface ReadStoreOptions {
  checkPki?: boolean;
  /** Environment for the age identity variables (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Expected OS kind; undefined accepts either (status, encrypt, decrypt). */
  os?: SiteOs;
}

/**
 * Read a site's secrets: secrets.yaml, or secrets.yaml.age decrypted in memory with the identity
 * named by EDGEIMG_AGE_IDENTITY / SOPS_AGE_KEY_FILE. Undefined only when neither file exists:
 * an encrypted file that cannot be decrypted is an EnvironmentError, never "no secrets".
 */
export async function readSiteStore(secretsDir: string, siteId: string, opts: ReadStoreOptions = {}): Promise<StoredSiteSecrets | undefined> {
  const plainFile = siteSecretsPath(secretsDir, siteId);
  const ageFile = siteSecretsAgePath(secretsDir, siteId);
  const cipher = await readStoreFile(ageFile, false);
  const plain = await readStoreFile(plainFile, true);
  if (cipher !== undefined && plain !== undefined) {
    throw new EnvironmentError(
      `site ${siteId} has both ${plainFile} and ${ageFile} (an interrupted conversion?): refusing to guess which is current; ` +
        `finish it with 'edgeimg secrets encrypt --site ${siteId}' (keeps the encrypted form) or 'edgeimg secrets decrypt --site ${siteId}'`,
    );
  }
  if (plain !== undefined) {
    const text = plain.toString('utf8');
    return { secrets: await parseChecked(text, plainFile, opts.os, text, opts.checkPki), text, encrypted: false, file: plainFile, fileSha256: sha256Of(plain) };
  }
  if (cipher === undefined) return undefined;
  const identity = loadAgeIdentity(opts.env, `to decrypt ${ageFile}`);
  const text = await ageDecrypt(cipher, ageFile, identity);
  return { secrets: await parseChecked(text, ageFile, opts.os, cipher, opts.checkPki), text, encrypted: true, file: ageFile, fileSha256: sha256Of(cipher) };
}

const sha256Of = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * The sha256 (hex) of the file a site's secrets are stored in (secrets.yaml or
 * secrets.yaml.age), without parsing or decrypting it; undefined when there is none. An
 * incremental build compares it with the stamp of the last build: equal bytes, equal secrets.
 * Synchronous: a build checks thousands of sites, and these are small files.
 */
export function siteStoreFingerprintSync(secretsDir: string, siteId: string): string | undefined {
  for (const file of [siteSecretsAgePath(secretsDir, siteId), siteSecretsPath(secretsDir, siteId)]) {
    let fd: number | undefined;
    try {
      // O_NONBLOCK: a FIFO in its place is not waited on; fstat then refuses it
      fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
      if (!fstatSync(fd).isFile()) return undefined;
      return sha256Of(readFileSync(fd));
    } catch (err) {
      if (errno(err) === 'ENOENT') continue;
      return undefined; // unreadable: the full load reports it
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  return undefined;
}

async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // best effort: not all platforms/filesystems allow fsync on a directory
  }
}

async function writeNew(path: string, data: string | Uint8Array, flag: 'wx'): Promise<void> {
  const fh = await open(path, flag, 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK']);

const tmpName = (dir: string, path: string): string => join(dir, `.edgeimg-tmp-${basename(path)}-${randomBytes(6).toString('hex')}`);

/**
 * Publish `data` at `path` unless something is already there. Returns false if another writer
 * got there first. Uses link(2) so that the name only ever refers to a complete file; on
 * filesystems without hard links it falls back to an exclusive create.
 */
async function publishOnce(path: string, dir: string, data: string | Uint8Array): Promise<boolean> {
  const tmp = tmpName(dir, path);
  try {
    await writeNew(tmp, data, 'wx');
    try {
      await link(tmp, path);
      return true;
    } catch (err) {
      const code = errno(err);
      if (code === 'EEXIST') return false;
      if (code === undefined || !LINK_UNSUPPORTED.has(code)) throw err;
    }
  } finally {
    await rm(tmp, { force: true });
  }
  try {
    await writeNew(path, data, 'wx');
    return true;
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    throw err;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Load the winner's file after losing a creation race (tolerates a writer without link(2) still writing). */
async function loadWinner(secretsDir: string, siteId: string, os: SiteOs, env: NodeJS.ProcessEnv | undefined): Promise<StoredSiteSecrets> {
  for (let attempt = 0; ; attempt++) {
    try {
      const s = await readSiteStore(secretsDir, siteId, { os, ...(env ? { env } : {}) });
      if (s) return s;
      fail(siteSecretsPath(secretsDir, siteId), 'disappeared while being created');
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(25);
    }
  }
}

export interface LoadOrCreateOptions {
  mustExist?: boolean;
  /**
   * The fleet's age recipients (spec.secrets.ageRecipients). When non-empty, new secrets are
   * created encrypted (secrets.yaml.age) and no plaintext copy is written.
   */
  ageRecipients?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * Load the site's secrets, creating them on first use. Never regenerates an existing file
 * (plaintext or encrypted; an encrypted one that cannot be decrypted is an error, never a
 * reason to mint). Throws EnvironmentError (naming the file, never a value) if the file is too
 * open, malformed, inconsistent, belongs to the other OS kind, or cannot be decrypted.
 */
export async function loadOrCreateSiteSecrets(
  secretsDir: string,
  siteId: string,
  os: SiteOs,
  opts: LoadOrCreateOptions = {},
): Promise<{ secrets: SiteSecrets; created: boolean; storeSha256: string }> {
  const file = siteSecretsPath(secretsDir, siteId);
  const existing = await readSiteStore(secretsDir, siteId, { os, checkPki: true, ...(opts.env ? { env: opts.env } : {}) });
  if (existing) return { secrets: existing.secrets, created: false, storeSha256: existing.fileSha256 };
  if (opts.mustExist) {
    throw new EnvironmentError(
      `site secrets for ${siteId} are missing (${file}) and existing secrets are required (--require-secrets or EDGEIMG_REQUIRE_SECRETS=1): ` +
        'refusing to mint a new PKI; restore the site secrets from your secret store, or build without --require-secrets for a new site',
    );
  }

  const dir = join(secretsDir, siteId);
  await ensurePrivateDir(dir);
  const fresh = os === 'talos' ? await generateTalosSecrets() : await generateKairosSecrets();
  // what we publish passes the same full check a later load would run
  const problems = fresh.kind === 'talos' ? checkTalosPki(fresh) : checkKairosPki(fresh);
  if (problems.length > 0) throw new Error(`internal error: generated secrets for ${siteId} fail the PKI check: ${problems.join('; ')}`);
  const text = serializeSiteSecrets(fresh);
  const recipients = opts.ageRecipients ?? [];
  const target = recipients.length > 0 ? siteSecretsAgePath(secretsDir, siteId) : file;
  const data = recipients.length > 0 ? await ageEncrypt(text, recipients) : text;
  const won = await publishOnce(target, dir, data);
  if (won) {
    await fsyncDir(dir);
    await markPkiChecked(target, `sha256:${createHash('sha256').update(data).digest('hex')}`);
    return { secrets: fresh, created: true, storeSha256: sha256Of(data) };
  }
  const winner = await loadWinner(secretsDir, siteId, os, opts.env);
  return { secrets: winner.secrets, created: false, storeSha256: winner.fileSha256 };
}

/**
 * Store `text` (a complete secrets YAML that passed the full check) as the site's secrets,
 * replacing whatever form is there: encrypted to `recipients` when there are any, else
 * plaintext. Atomic: the new file is written under a temporary name, fsynced and renamed into
 * place, then the other form (if any) is removed, so the site never has neither; a crash between
 * the two steps leaves both, which readSiteStore refuses until the conversion is re-run.
 */
export async function writeSiteStore(
  secretsDir: string,
  siteId: string,
  text: string,
  opts: { recipients: readonly string[] },
): Promise<{ file: string; removed?: string }> {
  const plainFile = siteSecretsPath(secretsDir, siteId);
  const ageFile = siteSecretsAgePath(secretsDir, siteId);
  const encrypt = opts.recipients.length > 0;
  const target = encrypt ? ageFile : plainFile;
  const other = encrypt ? plainFile : ageFile;
  const dir = join(secretsDir, siteId);
  await ensurePrivateDir(dir);
  const data = encrypt ? await ageEncrypt(text, opts.recipients) : text;
  const tmp = tmpName(dir, target);
  try {
    await writeNew(tmp, data, 'wx');
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
  await markPkiChecked(target, `sha256:${createHash('sha256').update(data).digest('hex')}`);
  let removed: string | undefined;
  try {
    await stat(other);
    await rm(other);
    removed = other;
    await fsyncDir(dir);
  } catch (err) {
    if (errno(err) !== 'ENOENT') throw err;
  }
  return { file: target, ...(removed ? { removed } : {}) };
}
