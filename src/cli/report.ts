// `edgeimg report`: the static HTML fleet report (src/report/). Argument parsing and output only.

import { plural, UsageError } from '../util/diagnostics.js';
import { failureJson } from './common.js';
import { checkReportPath, fleetReport, writeReportFile } from '../report/index.js';
import { EXIT, parse, type Io } from './main.js';

/** `--now`: an ISO 8601 date or date-time (UTC unless it names a zone), or @SECONDS since the epoch. */
export function parseNow(text: string): Date {
  const epoch = /^@([0-9]{1,12})$/.exec(text);
  if (epoch) return new Date(Number(epoch[1]) * 1000);
  if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$/.test(text)) {
    // a date-time without a zone is UTC, as a date alone is: the page must not depend on the machine's zone
    const iso = /[T ][0-9]{2}:[0-9]{2}/.test(text) && !/(Z|[+-][0-9]{2}:?[0-9]{2})$/.test(text) ? `${text.replace(' ', 'T')}Z` : text.replace(' ', 'T');
    const ms = Date.parse(iso);
    if (!Number.isNaN(ms)) return new Date(ms);
  }
  throw new UsageError(`--now takes an ISO 8601 date or time (2026-12-01, 2026-12-01T20:00:00Z) or @SECONDS, got "${text}"`);
}


export async function runReport(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    site: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    catalogue: { type: 'string', default: 'catalogue' },
    out: { type: 'string', default: 'out' },
    secrets: { type: 'string', default: process.env.EDGEIMG_SECRETS_DIR ?? 'secrets' },
    html: { type: 'string' },
    now: { type: 'string' },
  });
  try {
    const sites = values.site ?? [];
    if (values.all && sites.length > 0) throw new UsageError('give either --site or --all, not both');
    if (!values.html) throw new UsageError('give --html FILE: where to write the report');
    const now = values.now !== undefined ? parseNow(values.now) : undefined;
    // before reading thousands of sites: a path that cannot be written fails at once
    await checkReportPath(values.html);
    const r = await fleetReport({
      catalogueDir: values.catalogue!,
      outDir: values.out!,
      secretsDir: values.secrets!,
      ...(sites.length > 0 ? { sites } : {}),
      ...(now ? { now } : {}),
    });
    await writeReportFile(values.html, r.html);
    const bytes = Buffer.byteLength(r.html);
    const s = r.summary;
    const attention = [
      s.verify.fail > 0 ? `${s.verify.fail} failed verify` : '',
      s.verify.stale > 0 ? `${s.verify.stale} stale verify` : '',
      s.attention.certExpiring.length > 0 ? `${plural(s.attention.certExpiring.length, 'admin certificate')} under ${s.adminCerts.warnDays} days` : '',
    ].filter(Boolean);
    io.err(
      `edgeimg: wrote the fleet report (${plural(s.sites, 'site')}, ${plural(s.nodes, 'node')}, ${(bytes / 1024).toFixed(0)} KiB) to ${values.html}` +
        `; as of ${s.asOf ?? 'unknown'} (${s.asOfSource})${attention.length > 0 ? `; ${attention.join(', ')}` : ''}\n`,
    );
    if (values.json) io.out(`${JSON.stringify({ ...s, html: values.html, bytes })}\n`);
    return EXIT.ok;
  } catch (err) {
    // --json promises one result object on stdout, failures included
    if (values.json) io.out(`${JSON.stringify(failureJson(err))}\n`);
    throw err;
  }
}
