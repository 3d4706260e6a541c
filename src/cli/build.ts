import { build, parseShard, type MediaKind } from '../build/build.js';
import { formatDiagnostic, plural, UsageError } from '../util/diagnostics.js';
import { failureJson } from './common.js';
import { EXIT, parse, type Io } from './main.js';
import { createProgress, type Progress } from '../util/progress.js';

/** Fewer sites than this finish before a bar would tell anyone anything. */
const PROGRESS_MIN_SITES = 16;

export function parseMedia(text: string): MediaKind[] {
  const kinds = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of kinds) if (k !== 'iso' && k !== 'img' && k !== 'onestick') throw new UsageError(`--media accepts iso, img and onestick, got "${k}"`);
  if (kinds.length === 0) throw new UsageError('--media needs at least one of iso, img, onestick');
  return [...new Set(kinds)].sort() as MediaKind[];
}


export async function runBuild(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    site: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    shard: { type: 'string' },
    catalogue: { type: 'string', default: 'catalogue' },
    out: { type: 'string', default: 'out' },
    secrets: { type: 'string', default: process.env.EDGEIMG_SECRETS_DIR ?? 'secrets' },
    media: { type: 'string', default: 'iso' },
    strict: { type: 'boolean' },
    'require-secrets': { type: 'boolean' },
    cache: { type: 'string' },
    'allow-standin': { type: 'boolean' },
    'signing-key': { type: 'string' },
    force: { type: 'boolean' },
  });
  const sites = values.site ?? [];
  if (values.all && sites.length > 0) throw new UsageError('give either --site or --all, not both');
  if (values.shard && !values.all) throw new UsageError('--shard needs --all');
  const started = Date.now();
  // a bar on a terminal, periodic lines in CI logs; every other line goes through it whole
  let bar: Progress | undefined;
  const say = (line: string): void => (bar ? bar.log(line) : io.err(line));
  let result: Awaited<ReturnType<typeof build>>;
  try {
    result = await build({
    catalogueDir: values.catalogue!,
    outDir: values.out!,
    secretsDir: values.secrets!,
    sites,
    all: values.all,
    shard: values.shard ? parseShard(values.shard) : undefined,
    media: parseMedia(values.media!),
    strict: values.strict,
    requireSecrets: values['require-secrets'] || undefined,
    ...(values.cache ? { cacheDir: values.cache } : {}),
    ...(values['allow-standin'] ? { allowStandin: true } : {}),
    ...(values['signing-key'] ? { signingKeyFile: values['signing-key'] } : {}),
    ...(values.force ? { force: true } : {}),
    warn: (d) => say(`${formatDiagnostic(d)}\n`),
    log: (line) => say(`edgeimg: ${line}\n`),
    progress: {
      start: (total) => {
        if (total >= PROGRESS_MIN_SITES) bar = createProgress({ total, label: 'edgeimg: building', stream: { write: (s: string) => io.err(s), isTTY: io.isTTY ?? false } });
      },
      done: (site) => bar?.tick(1, site),
    },
    });
    bar?.done();
    bar = undefined;
  } catch (err) {
    bar?.done();
    // --json promises one result object on stdout, failures included
    if (values.json) io.out(`${JSON.stringify(failureJson(err, { out: values.out! }))}\n`);
    throw err;
  }
  const built = result.sites.filter((s) => s.status === 'built');
  const nodes = built.reduce((n, s) => n + s.nodes.length, 0);
  const skipped = result.unchanged > 0 ? `; ${plural(result.unchanged, 'site')} unchanged, skipped` : '';
  io.err(`edgeimg: built ${plural(built.length, 'site')}, ${plural(nodes, 'node')} into ${values.out}${skipped} in ${((Date.now() - started) / 1000).toFixed(2)} s\n`);
  if (values.json) {
    io.out(
      `${JSON.stringify({
        ok: true,
        out: values.out,
        built: built.length,
        unchanged: result.unchanged,
        sites: result.sites.map((s) => ({
          site: s.site,
          status: s.status,
          os: s.os,
          dir: s.dir,
          nodes: s.nodes,
          inputDigest: s.inputDigest,
          secretsCreated: s.secretsCreated,
          artifacts: s.artifacts.length,
        })),
      })}\n`,
    );
  }
  return EXIT.ok;
}
