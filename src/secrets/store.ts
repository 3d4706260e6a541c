// On-disk site secrets: <secretsDir>/<siteId>/secrets.yaml (dir 0700, file 0600).
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
import { constants as fsConstants } from 'node:fs';
import { chmod, link, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { EnvironmentError } from '../util/diagnostics.js';
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
export const SECRETS_FORMAT_VERSION = 1;

const SITE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function siteSecretsPath(secretsDir: string, siteId: string): string {
  if (!SITE_ID_RE.test(siteId) || siteId.includes('..')) {
    throw new Error(`invalid site id ${JSON.stringify(siteId)}: cannot be used as a secrets directory name`);
  }
  return join(secretsDir, siteId, SECRETS_FILE_NAME);
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
export function parseSiteSecrets(text: string, file: string, os: SiteOs, opts: { checkPki?: boolean } = {}): SiteSecrets {
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
  if (kind !== os) {
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
    const t: TalosSecrets = {
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
      admin: pemPair(file, root, 'edgeimg.admin'),
    };
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

/**
 * Read and parse an existing secrets file; undefined if it does not exist. With `checkPki`,
 * the whole PKI is checked (cached by the file's digest); an inconsistent store is an
 * EnvironmentError naming the field, never a value.
 */
export async function readSiteSecrets(file: string, os: SiteOs, opts: { checkPki?: boolean } = {}): Promise<SiteSecrets | undefined> {
  let fh;
  try {
    // O_NONBLOCK: a FIFO in place of the file must fail below (not a regular file), not hang here
    fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
  let text: string;
  try {
    const st = await fh.stat();
    if (!st.isFile()) fail(file, 'is not a regular file');
    const perm = st.mode & 0o777;
    if ((perm & 0o077) !== 0) {
      throw new EnvironmentError(
        `permissions ${perm.toString(8).padStart(4, '0')} for site secrets file ${file} are too open: ` +
          `it must be accessible by its owner only. Fix with: chmod 600 '${file}'`,
      );
    }
    text = await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
  if (!opts.checkPki) return parseSiteSecrets(text, file, os);
  const digest = `sha256:${createHash('sha256').update(text).digest('hex')}`;
  if ((await pkiCheckedFor(file)) === digest) return parseSiteSecrets(text, file, os);
  const secrets = parseSiteSecrets(text, file, os, { checkPki: true });
  await markPkiChecked(file, digest);
  return secrets;
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

async function writeNew(path: string, data: string, flag: 'wx'): Promise<void> {
  const fh = await open(path, flag, 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK']);

/**
 * Publish `data` at `path` unless something is already there. Returns false if another writer
 * got there first. Uses link(2) so that the name only ever refers to a complete file; on
 * filesystems without hard links it falls back to an exclusive create.
 */
async function publishOnce(path: string, dir: string, data: string): Promise<boolean> {
  const tmp = join(dir, `.edgeimg-tmp-${SECRETS_FILE_NAME}-${randomBytes(6).toString('hex')}`);
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
async function loadWinner(file: string, os: SiteOs): Promise<SiteSecrets> {
  for (let attempt = 0; ; attempt++) {
    try {
      const s = await readSiteSecrets(file, os);
      if (s) return s;
      fail(file, 'disappeared while being created');
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(25);
    }
  }
}

/**
 * Load the site's secrets, creating them on first use. Never regenerates an existing file.
 * Throws EnvironmentError (naming the file, never a value) if the file is too open, malformed,
 * inconsistent, or belongs to the other OS kind.
 */
export async function loadOrCreateSiteSecrets(
  secretsDir: string,
  siteId: string,
  os: SiteOs,
  opts: { mustExist?: boolean } = {},
): Promise<{ secrets: SiteSecrets; created: boolean }> {
  const file = siteSecretsPath(secretsDir, siteId);
  const existing = await readSiteSecrets(file, os, { checkPki: true });
  if (existing) return { secrets: existing, created: false };
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
  const won = await publishOnce(file, dir, text);
  if (won) {
    await fsyncDir(dir);
    await markPkiChecked(file, `sha256:${createHash('sha256').update(text).digest('hex')}`);
    return { secrets: fresh, created: true };
  }
  return { secrets: await loadWinner(file, os), created: false };
}
