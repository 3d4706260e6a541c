// `edgeimg secrets status | reissue-admin | import | encrypt | decrypt | signing-key`: the site
// secrets lifecycle (docs/secrets.md). Argument parsing and printing; the operations live in
// src/secrets/. Nothing here prints a secret value.

import { lstat, readFile } from 'node:fs/promises';
import type { ParseArgsConfig } from 'node:util';
import { parseWithPositionals } from './common.js';
import { planFleet } from '../catalogue/index.js';
import type { SitePlan } from '../catalogue/plan.js';
import { ageDecrypt, loadAgeIdentity } from '../secrets/age.js';
import { checkKairosPki, checkTalosPki } from '../secrets/check.js';
import { TOKEN_RE } from '../secrets/generate.js';
import { adoptKairosToken, adoptTalosBundle, certificateDates, reissueAdmin } from '../secrets/lifecycle.js';
import {
  parseTalosctlBundle,
  readSiteStore,
  serializeSiteSecrets,
  siteSecretsAgePath,
  siteSecretsPath,
  writeSiteStore,
  type StoredSiteSecrets,
} from '../secrets/store.js';
import type { SiteSecrets } from '../secrets/types.js';
import { EnvironmentError, plural, UsageError } from '../util/diagnostics.js';
import { COMMAND_HELP, EXIT, type Io } from './main.js';


type Options = NonNullable<ParseArgsConfig['options']>;

const common = {
  site: { type: 'string', multiple: true },
  all: { type: 'boolean' },
  secrets: { type: 'string' },
  catalogue: { type: 'string', default: 'catalogue' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
} as const;

const parse = <T extends Options>(args: string[], options: T) => parseWithPositionals(common, args, options);

const secretsDirOf = (v: string | undefined): string => v ?? process.env['EDGEIMG_SECRETS_DIR'] ?? 'secrets';

export const WARN_DAYS = 30;
export const FAIL_DAYS = 7;
const DAY_MS = 86_400_000;

interface Selection {
  plans: SitePlan[];
  recipients: string[];
}

/** The sites named (or all of them), resolved from the catalogue. */
async function select(catalogueDir: string, sites: string[] | undefined, all: boolean | undefined, sub: string, single = false): Promise<Selection> {
  const ids = sites ?? [];
  if (all && ids.length > 0) throw new UsageError('give either --site or --all, not both');
  if (!all && ids.length === 0) throw new UsageError(`secrets ${sub} needs ${single ? '--site ID' : '--site ID or --all'}`);
  if (single && (all || ids.length !== 1)) throw new UsageError(`secrets ${sub} takes exactly one --site`);
  const fleet = await planFleet(catalogueDir);
  const recipients = [...(fleet.plans[0]?.secrets?.ageRecipients ?? fleet.catalogue.fleet?.spec.secrets?.ageRecipients ?? [])];
  if (all) return { plans: fleet.plans, recipients };
  const byId = new Map(fleet.plans.map((p) => [p.id, p]));
  const plans: SitePlan[] = [];
  for (const id of ids) {
    const p = byId.get(id);
    if (!p) throw new UsageError(`unknown site "${id}" (not in ${catalogueDir})`);
    plans.push(p);
  }
  return { plans, recipients };
}

export async function runSecrets(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'signing-key') return (await import('./secrets-signing.js')).runSigningKey(rest, io);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help' || rest.includes('--help') || rest.includes('-h')) {
    io.out(`${COMMAND_HELP['secrets']}\n`);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  try {
    return await dispatch(sub, rest, io);
  } catch (err) {
    // --json promises one result object on stdout, failures included
    if (rest.includes('--json')) {
      const kind = err instanceof UsageError ? 'usage' : err instanceof EnvironmentError ? 'environment' : (err as Error)?.name === 'CatalogueError' ? 'catalogue' : 'internal';
      io.out(`${JSON.stringify({ ok: false, error: kind, message: (err as Error)?.message ?? String(err) })}\n`);
    }
    throw err;
  }
}

async function dispatch(sub: string, rest: string[], io: Io): Promise<number> {
  switch (sub) {
    case 'status':
      return status(rest, io);
    case 'reissue-admin':
      return reissue(rest, io);
    case 'import':
      return importSecrets(rest, io);
    case 'encrypt':
    case 'decrypt':
      return convert(sub, rest, io);
    default:
      throw new UsageError(`unknown secrets subcommand "${sub}" (status, reissue-admin, import, encrypt, decrypt, signing-key)`);
  }
}

function noPositionals(positionals: string[], sub: string): void {
  if (positionals.length > 0) throw new UsageError(`secrets ${sub} takes no arguments, got "${positionals[0]}"`);
}

// ---------------------------------------------------------------------------------------------
// status

export interface CertStatus {
  name: string;
  subject: string;
  notAfter: string;
  daysLeft: number;
}

export interface SiteStatus {
  site: string;
  os: 'talos' | 'kairos';
  /** none: no secrets yet; plaintext or encrypted otherwise. */
  store: 'none' | 'plaintext' | 'encrypted';
  file?: string;
  certificates: CertStatus[];
  /** What else the store holds (no dates), e.g. the Kairos join token. */
  has: string[];
  note?: string;
}

function certsOf(s: SiteSecrets, plan: SitePlan): { certs: Array<[string, string]>; has: string[]; note?: string } {
  if (s.kind === 'talos') {
    return {
      certs: [
        ['os CA (certs.os)', s.certs.os.crt],
        ['kubernetes CA (certs.k8s)', s.certs.k8s.crt],
        ['aggregator CA (certs.k8saggregator)', s.certs.k8sAggregator.crt],
        ['etcd CA (certs.etcd)', s.certs.etcd.crt],
        ['admin client certificate (talosconfig)', s.admin.crt],
      ],
      has: ['cluster id/secret', 'bootstrap token', 'trustd token', 'secretbox encryption secret', 'service account key (no expiry)'],
    };
  }
  const k3s = plan.kairos?.provider === 'k3s';
  return {
    certs: [['cluster CA (ca)', s.ca.crt]],
    has: ['join token (no expiry)'],
    ...(k3s ? { note: 'k3s makes its own cluster CAs on the first server: edgeimg holds only the join token they are bound to; the ca entry is unused by k3s' } : {}),
  };
}

async function status(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {});
  noPositionals(positionals, 'status');
  const all = values.all || (values.site ?? []).length === 0;
  const { plans } = await select(values.catalogue!, values.site, all, 'status');
  const secretsDir = secretsDirOf(values.secrets);
  const now = Date.now();
  const out: SiteStatus[] = [];
  let worst = Infinity;
  for (const plan of plans) {
    const stored = await readSiteStore(secretsDir, plan.id, { os: plan.os });
    if (!stored) {
      out.push({ site: plan.id, os: plan.os, store: 'none', certificates: [], has: [], note: 'no secrets yet (made by the first build, or edgeimg secrets import)' });
      continue;
    }
    const { certs, has, note } = certsOf(stored.secrets, plan);
    const certificates = certs.map(([name, pem]): CertStatus => {
      const d = certificateDates(pem);
      const daysLeft = Math.floor((d.notAfter.getTime() - now) / DAY_MS);
      worst = Math.min(worst, daysLeft);
      return { name, subject: d.subject, notAfter: d.notAfter.toISOString(), daysLeft };
    });
    out.push({ site: plan.id, os: plan.os, store: stored.encrypted ? 'encrypted' : 'plaintext', file: stored.file, certificates, has, ...(note ? { note } : {}) });
  }
  for (const s of out) {
    for (const c of s.certificates) {
      if (c.daysLeft < FAIL_DAYS) io.err(`edgeimg: ${s.site}: ${c.name} ${c.daysLeft < 0 ? 'has expired' : `expires in ${plural(c.daysLeft, 'day')}`} (${c.notAfter}): under ${FAIL_DAYS} days\n`);
      else if (c.daysLeft < WARN_DAYS) io.err(`edgeimg: warning: ${s.site}: ${c.name} expires in ${plural(c.daysLeft, 'day')} (${c.notAfter})\n`);
    }
  }
  const failing = worst < FAIL_DAYS;
  if (values.json) {
    io.out(`${JSON.stringify({ ok: !failing, warnDays: WARN_DAYS, failDays: FAIL_DAYS, sites: out })}\n`);
  } else {
    for (const s of out) {
      io.out(`${s.site} (${s.os}, ${s.store === 'none' ? 'no secrets' : `${s.store}: ${s.file}`})\n`);
      for (const c of s.certificates) {
        const flag = c.daysLeft < FAIL_DAYS ? '  EXPIRING' : c.daysLeft < WARN_DAYS ? '  renew soon' : '';
        io.out(`  ${c.name.padEnd(40)} notAfter ${c.notAfter}  ${String(c.daysLeft).padStart(5)} days left${flag}\n`);
      }
      if (s.has.length > 0) io.out(`  also holds: ${s.has.join(', ')}\n`);
      if (s.note) io.out(`  note: ${s.note}\n`);
    }
  }
  return failing ? EXIT.failed : EXIT.ok;
}

// ---------------------------------------------------------------------------------------------
// reissue-admin

async function reissue(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {});
  noPositionals(positionals, 'reissue-admin');
  const { plans, recipients } = await select(values.catalogue!, values.site, values.all, 'reissue-admin', true);
  const plan = plans[0]!;
  const secretsDir = secretsDirOf(values.secrets);
  if (plan.os !== 'talos') throw new UsageError(`site ${plan.id} is a Kairos site: it has no admin client certificate (talosconfig is Talos only)`);
  const stored = await readSiteStore(secretsDir, plan.id, { os: 'talos', checkPki: true });
  if (!stored) throw new EnvironmentError(`site ${plan.id} has no secrets (${siteSecretsPath(secretsDir, plan.id)}): nothing to reissue; build the site or import its secrets`);
  if (stored.secrets.kind !== 'talos') throw new Error('internal error: Talos site with Kairos secrets');
  const before = certificateDates(stored.secrets.admin.crt);
  const next = await reissueAdmin(stored.secrets);
  const problems = checkTalosPki(next);
  if (problems.length > 0) throw new Error(`internal error: reissued admin certificate fails the PKI check: ${problems.join('; ')}`);
  const text = serializeSiteSecrets(next);
  // keep the store's form: encrypted stays encrypted (to the current recipients)
  const to = stored.encrypted || recipients.length > 0 ? recipients : [];
  if (stored.encrypted && to.length === 0) throw new UsageError(`${stored.file} is encrypted but the Fleet names no age recipients: refusing to write it back as plaintext (use edgeimg secrets decrypt first)`);
  const written = await writeSiteStore(secretsDir, plan.id, text, { recipients: to });
  const after = certificateDates(next.admin.crt);
  if (values.json) {
    io.out(`${JSON.stringify({ ok: true, site: plan.id, file: written.file, previous: { serial: before.serial, notAfter: before.notAfter.toISOString() }, admin: { serial: after.serial, issuer: after.issuer, notAfter: after.notAfter.toISOString() } })}\n`);
  }
  io.err(
    `edgeimg: ${plan.id}: new admin client certificate (serial ${after.serial}, valid until ${after.notAfter.toISOString()}) signed by the unchanged OS CA, in ${written.file}; ` +
      `rebuild the site (edgeimg build --site ${plan.id}) for the new talosconfig\n`,
  );
  return EXIT.ok;
}

// ---------------------------------------------------------------------------------------------
// import

async function readInput(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new EnvironmentError(`cannot read ${what} ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

async function importSecrets(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { force: { type: 'boolean' }, token: { type: 'string' }, 'token-file': { type: 'string' } });
  const { plans, recipients } = await select(values.catalogue!, values.site, values.all, 'import', true);
  const plan = plans[0]!;
  const secretsDir = secretsDirOf(values.secrets);
  let existing: StoredSiteSecrets | undefined;
  try {
    existing = await readSiteStore(secretsDir, plan.id, { os: plan.os });
  } catch (err) {
    // a broken or undecryptable store is still a store: --force replaces it, nothing else does
    if (!values.force) throw err;
  }
  const present = existing !== undefined || (await exists(siteSecretsPath(secretsDir, plan.id))) || (await exists(siteSecretsAgePath(secretsDir, plan.id)));
  if (present && !values.force) {
    throw new UsageError(`site ${plan.id} already has secrets (${existing?.file ?? siteSecretsPath(secretsDir, plan.id)}): refusing to overwrite them without --force (the current cluster identity would be lost)`);
  }

  let next: SiteSecrets;
  let source: string;
  if (plan.os === 'talos') {
    if (values.token !== undefined || values['token-file'] !== undefined) throw new UsageError('--token / --token-file are for Kairos sites; a Talos site imports a talosctl secrets bundle FILE');
    if (positionals.length !== 1) throw new UsageError('secrets import for a Talos site takes one FILE: the secrets.yaml `talosctl gen secrets` wrote');
    source = positionals[0]!;
    const bundle = parseTalosctlBundle(await readInput(source, 'secrets bundle'), source);
    next = await adoptTalosBundle(bundle);
  } else {
    if (positionals.length > 0) throw new UsageError('secrets import for a Kairos site takes --token TOKEN or --token-file FILE, not a FILE');
    if ((values.token === undefined) === (values['token-file'] === undefined)) throw new UsageError('give one of --token TOKEN or --token-file FILE');
    source = values['token-file'] ?? '--token';
    const token = values.token ?? (await readInput(values['token-file']!, 'token file')).trim();
    if (!TOKEN_RE.test(token)) throw new UsageError(`the token from ${source} is not of the form [a-z0-9]{6}.[a-z0-9]{16} (the shape edgeimg renders for k3s and k0s)`);
    next = await adoptKairosToken(token, existing?.secrets.kind === 'kairos' ? existing.secrets : undefined);
  }
  // the same full check generated secrets pass (dates included: an expired CA is refused)
  const problems = next.kind === 'talos' ? checkTalosPki(next) : checkKairosPki(next);
  if (problems.length > 0) throw new EnvironmentError(`${source}: the imported secrets fail the PKI check:\n  - ${problems.join('\n  - ')}`);
  const written = await writeSiteStore(secretsDir, plan.id, serializeSiteSecrets(next), { recipients });
  const os = next.kind === 'talos' ? certificateDates(next.certs.os.crt) : undefined;
  if (values.json) {
    io.out(`${JSON.stringify({ ok: true, site: plan.id, os: plan.os, file: written.file, encrypted: recipients.length > 0, ...(os ? { osCaFingerprint256: os.fingerprint256 } : {}) })}\n`);
  }
  io.err(`edgeimg: ${plan.id}: imported ${plan.os === 'talos' ? `secrets from ${source} (OS CA ${os!.fingerprint256}; new admin client certificate)` : 'the cluster join token'} into ${written.file}\n`);
  if (plan.os === 'kairos' && plan.kairos?.provider === 'k0s' && existing === undefined) {
    io.err(`edgeimg: warning: ${plan.id} is a k0s site: the cluster CA is edgeimg's new one, not the running cluster's; workers joining a running k0s cluster need its CA\n`);
  }
  return EXIT.ok;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// encrypt / decrypt

/**
 * Both forms present (a conversion interrupted between rename and unlink): the text, when
 * both hold the same bytes; otherwise an error, since guessing could lose the current one.
 */
async function readInterrupted(secretsDir: string, siteId: string): Promise<{ text: string } | undefined> {
  const plain = siteSecretsPath(secretsDir, siteId);
  const enc = siteSecretsAgePath(secretsDir, siteId);
  let p: Buffer;
  let c: Buffer;
  try {
    [p, c] = await Promise.all([readFile(plain), readFile(enc)]);
  } catch {
    return undefined;
  }
  const text = await ageDecrypt(c, enc, loadAgeIdentity(process.env, `to decrypt ${enc}`));
  if (text !== p.toString('utf8')) {
    throw new EnvironmentError(`site ${siteId} has both ${plain} and ${enc} and they differ: decide by hand which is current and remove the other`);
  }
  return { text };
}

async function convert(sub: 'encrypt' | 'decrypt', args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {});
  noPositionals(positionals, sub);
  const { plans, recipients } = await select(values.catalogue!, values.site, values.all, sub);
  const secretsDir = secretsDirOf(values.secrets);
  if (sub === 'encrypt' && recipients.length === 0) {
    throw new UsageError(`secrets encrypt needs age recipients: list them in the Fleet's spec.secrets.ageRecipients in ${values.catalogue}`);
  }
  const results: Array<{ site: string; action: string; file?: string }> = [];
  for (const plan of plans) {
    const interrupted = await readInterrupted(secretsDir, plan.id);
    let text: string;
    let wasEncrypted: boolean;
    if (interrupted) {
      text = interrupted.text;
      wasEncrypted = sub === 'decrypt';
    } else {
      const stored = await readSiteStore(secretsDir, plan.id, { os: plan.os, checkPki: true });
      if (!stored) {
        results.push({ site: plan.id, action: 'no secrets' });
        continue;
      }
      if (sub === 'decrypt' && !stored.encrypted) {
        results.push({ site: plan.id, action: 'already plaintext', file: stored.file });
        continue;
      }
      text = stored.text;
      wasEncrypted = stored.encrypted;
    }
    // the stored bytes are carried over unchanged: no value is re-serialised
    const written = await writeSiteStore(secretsDir, plan.id, text, { recipients: sub === 'encrypt' ? recipients : [] });
    const action = sub === 'decrypt' ? 'decrypted' : wasEncrypted ? 're-encrypted' : 'encrypted';
    results.push({ site: plan.id, action, file: written.file });
  }
  for (const r of results) io.err(`edgeimg: ${r.site}: ${r.action}${r.file ? ` (${r.file})` : ''}\n`);
  if (sub === 'encrypt') io.err(`edgeimg: encrypted to ${plural(recipients.length, 'age recipient')}\n`);
  if (sub === 'decrypt' && recipients.length > 0 && results.some((r) => r.action === 'decrypted')) {
    io.err('edgeimg: warning: the Fleet names age recipients: keep plaintext secrets out of git; edgeimg secrets encrypt encrypts them again\n');
  }
  if (values.json) io.out(`${JSON.stringify({ ok: true, recipients: recipients.length, sites: results })}\n`);
  return EXIT.ok;
}
