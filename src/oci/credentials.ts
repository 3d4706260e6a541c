// Registry credentials and what a registry asks for. Credentials come from
// EDGEIMG_REGISTRY_USERNAME + EDGEIMG_REGISTRY_PASSWORD, else from the `auths` entry for the
// registry in the first auth file that has one: $REGISTRY_AUTH_FILE,
// $XDG_RUNTIME_DIR/containers/auth.json (podman, skopeo, buildah), ~/.docker/config.json
// (docker). Credential helpers (credsStore, credHelpers) are not run: edgeimg does not execute
// programs named by a config file; a note says so when that is where the credentials are.
//
// Nothing here returns or logs a password: a Credentials object says where it came from, and
// that is all a message may quote.

import { homedir } from 'node:os';
import { join } from 'node:path';
import { readRegularFile } from '../util/safe-read.js';

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for messages: an environment variable pair or a file path. */
  source: string;
}

export const ENV_USERNAME = 'EDGEIMG_REGISTRY_USERNAME';
export const ENV_PASSWORD = 'EDGEIMG_REGISTRY_PASSWORD';

/** An auth file is a few KiB; anything much larger is not one. */
const MAX_AUTH_FILE = 1024 * 1024;

/** The auth files looked at, in order. */
export function authFiles(env: NodeJS.ProcessEnv): string[] {
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  const home = env.HOME ?? homedir();
  if (home) files.push(join(home, '.docker', 'config.json'));
  return files;
}

/** A key of `auths` as podman and docker write it (host, https://host, https://host/v1/, host/namespace), normalised. */
function normaliseKey(key: string): string {
  return key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/(v1|v2)?\/?$/, '').toLowerCase();
}

/** The `auths` keys that may hold credentials for `registry`/`repository`, most specific first. */
function candidateKeys(registry: string, repository: string): string[] {
  const host = registry.toLowerCase();
  const parts = repository.split('/');
  const keys: string[] = [];
  for (let n = parts.length; n >= 1; n--) keys.push(`${host}/${parts.slice(0, n).join('/')}`);
  keys.push(host);
  if (host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io') keys.push('docker.io', 'index.docker.io', 'registry-1.docker.io');
  return keys;
}

export interface CredentialLookup {
  credentials?: Credentials;
  /** Said on stderr: where credentials were looked for but not usable. Never holds a secret. */
  notes: string[];
}

/** The credentials to use for `registry` (host[:port]) and `repository`. */
export async function findCredentials(registry: string, repository: string, env: NodeJS.ProcessEnv = process.env): Promise<CredentialLookup> {
  const notes: string[] = [];
  const user = env[ENV_USERNAME];
  const pass = env[ENV_PASSWORD];
  if (user !== undefined && user !== '' && pass !== undefined) return { credentials: { username: user, password: pass, source: `${ENV_USERNAME}/${ENV_PASSWORD}` }, notes };
  if ((user !== undefined && user !== '') !== (pass !== undefined)) notes.push(`${ENV_USERNAME} and ${ENV_PASSWORD} must be set together; ignoring them`);
  const wanted = candidateKeys(registry, repository);
  for (const file of authFiles(env)) {
    const read = await readRegularFile(file, MAX_AUTH_FILE, 'registry auth files');
    if ('problem' in read) {
      if (read.code !== 'ENOENT') notes.push(`${file}: ${read.problem}; not used`);
      continue;
    }
    let doc: { auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown }>; credsStore?: unknown; credHelpers?: Record<string, unknown> };
    try {
      doc = JSON.parse(read.data.toString('utf8')) as typeof doc;
    } catch {
      notes.push(`${file}: not valid JSON; not used`);
      continue;
    }
    if (doc === null || typeof doc !== 'object') continue;
    const auths = doc.auths && typeof doc.auths === 'object' ? doc.auths : {};
    const byKey = new Map(Object.entries(auths).map(([k, v]) => [normaliseKey(k), v]));
    for (const key of wanted) {
      const entry = byKey.get(key);
      if (!entry || typeof entry !== 'object') continue;
      const parsed = entryCredentials(entry);
      if (parsed) return { credentials: { ...parsed, source: `${file} (auths entry ${key})` }, notes };
      notes.push(`${file}: the auths entry ${key} has no usable "auth" (base64 user:password)${entry.identitytoken ? '; identity tokens are not supported' : ''}`);
    }
    const helpers = doc.credHelpers && typeof doc.credHelpers === 'object' ? Object.keys(doc.credHelpers).map(normaliseKey) : [];
    if (helpers.some((h) => wanted.includes(h)) || (typeof doc.credsStore === 'string' && doc.credsStore !== '')) {
      notes.push(`${file} names a credential helper; edgeimg does not run credential helpers: set ${ENV_USERNAME} and ${ENV_PASSWORD}, or put an auths entry in $REGISTRY_AUTH_FILE`);
    }
  }
  return { notes };
}

function entryCredentials(entry: { auth?: unknown; username?: unknown; password?: unknown }): { username: string; password: string } | undefined {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon > 0) return { username: text.slice(0, colon), password: text.slice(colon + 1) };
    return undefined;
  }
  if (typeof entry.username === 'string' && entry.username !== '' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
  return undefined;
}

export interface Challenge {
  /** Lowercase: basic, bearer, ... */
  scheme: string;
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;

/**
 * WWW-Authenticate (RFC 9110 section 11.6.1): one or more challenges, each a scheme and
 * comma-separated auth-params (name=token or name="quoted string"). Unparseable rest is
 * ignored; parameter names are lowercased.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const ws = (): void => {
    while (i < header.length && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = (): string | undefined => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(header);
    if (!m) return undefined;
    i = TOKEN.lastIndex;
    return m[0];
  };
  while (i < header.length) {
    while (i < header.length && (header[i] === ',' || header[i] === ' ' || header[i] === '\t')) i++;
    const scheme = token();
    if (scheme === undefined) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      ws();
      const save = i;
      const name = token();
      if (name === undefined) break;
      ws();
      if (header[i] !== '=') {
        i = save; // the next challenge's scheme
        break;
      }
      i++;
      ws();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < header.length) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        // a token by the grammar; read leniently up to the next comma (realm=https://… unquoted)
        const start = i;
        while (i < header.length && header[i] !== ',' && header[i] !== ' ' && header[i] !== '\t') i++;
        value = header.slice(start, i);
      }
      challenge.params[name.toLowerCase()] = value;
      ws();
      if (header[i] === ',') i++;
      else break;
    }
  }
  return out;
}
