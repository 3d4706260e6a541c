import { affected } from '../fleet/affected.js';
import { plural, UsageError } from '../util/diagnostics.js';
import { EXIT, parse, type Io } from './main.js';

export async function runAffected(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    base: { type: 'string' },
    head: { type: 'string' },
    catalogue: { type: 'string', default: 'catalogue' },
    'max-jobs': { type: 'string' },
  });
  if (!values.base) throw new UsageError('give --base REF (the revision to compare with, e.g. origin/main or the pull request base sha)');
  const maxJobs = values['max-jobs'] === undefined ? 256 : Number(values['max-jobs']);
  if (!Number.isInteger(maxJobs) || maxJobs < 1) throw new UsageError(`--max-jobs must be a whole number >= 1, got "${values['max-jobs']}"`);
  const r = await affected({ catalogueDir: values.catalogue!, base: values.base, ...(values.head ? { head: values.head } : {}), maxJobs });
  if (values.json) io.out(`${JSON.stringify(r)}\n`);
  else for (const s of r.sites) io.out(`${s}\n`);
  for (const c of r.changes.slice(0, 50)) io.err(`edgeimg: ${c.site}: ${c.reasons.join('; ')}\n`);
  if (r.changes.length > 50) io.err(`edgeimg: … and ${r.changes.length - 50} more (--json lists them all)\n`);
  for (const s of r.removed) io.err(`edgeimg: ${s}: removed from the catalogue\n`);
  io.err(
    `edgeimg: ${plural(r.sites.length, 'site')} of ${r.total} affected between ${r.base.slice(0, 12)} and ${r.head.slice(0, 12)}` +
      `${r.all ? ' (every site)' : ''}${r.removed.length ? `, ${r.removed.length} removed` : ''}${r.shards.length ? `; ${plural(r.shards.length, 'shard')} of at most ${Math.ceil(r.sites.length / r.shards.length)}` : ''}\n`,
  );
  return EXIT.ok;
}
