// examples/kubernetes/verify-job.yaml: valid against the upstream batch/v1 Job schema
// (kubernetes-models' validators, and its generated types for unknown fields), rejected when
// broken; the shard arithmetic, the CLI flags and the read-only trust anchor docs/ci.md promises.

import { readFileSync } from 'node:fs';
import { Job, type IJob } from 'kubernetes-models/batch/v1/Job';
import { describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { dryParse } from './lib/dry-parse.js';
import { typeErrors } from './lib/k8s-types.js';
import { edgeimgCommands, edgeimgMentions } from './lib/shell.js';

vi.mock('../../src/cli/main.js', async (original) => (await import('./lib/dry-parse.js')).stopAtParse(await original()));

const FILE = 'examples/kubernetes/verify-job.yaml';
const TEXT = readFileSync(FILE, 'utf8');

/** The documents of a manifest, read as kubectl reads them (YAML 1.1: `0444` is octal). */
function documents(text: string): unknown[] {
  return parseAllDocuments(text, { version: '1.1' }).map((d) => {
    if (d.errors.length > 0) throw new Error(d.errors.map((e) => e.message).join('; '));
    return d.toJS();
  });
}

/** Problems each Job has for the API server: schema (types, enums, required) and unknown fields. */
function schemaProblems(objs: unknown[]): string[][] {
  const fields = typeErrors(objs, 'kubernetes-models/batch/v1/Job', 'IJob');
  return objs.map((obj, i) => {
    const problems: string[] = [];
    try {
      new Job(obj as IJob).validate();
    } catch (err) {
      problems.push(`schema: ${(err as Error).message}`);
    }
    return [...problems, ...fields[i]!.map((e) => `fields: ${e}`)];
  });
}

const [job] = documents(TEXT) as [IJob];
const spec = job.spec!;
const pod = spec.template.spec!;
const verify = pod.containers.find((c) => c.name === 'verify')!;
const env = (name: string): string | undefined => verify.env?.find((e) => e.name === name)?.value;

describe('examples/kubernetes/verify-job.yaml', () => {
  it('is one batch/v1 Job that passes the upstream Job schema with no unknown field', () => {
    expect(documents(TEXT)).toHaveLength(1);
    expect(job.kind).toBe('Job');
    expect(schemaProblems([job])).toEqual([[]]);
  });

  it('a broken copy fails: a wrong enum value, a wrong type, a misspelt field, a missing required field', () => {
    const broken: Array<[string, string, RegExp]> = [
      ['completionMode: Indexed', 'completionMode: indexed', /schema: .*completionMode/],
      ['parallelism: 4', 'parallelism: four', /schema: .*parallelism/],
      ['backoffLimitPerIndex: 1', 'backoffLimitPerIndx: 1', /fields: .*backoffLimitPerIndx\W* does not exist in type 'IJobSpec'/],
      ['      restartPolicy: Never', '      restartPolicy: Never\n      restartPolicyy: Never', /fields: .*restartPolicyy\W* does not exist in type 'IPodSpec'/],
      ['        - name: verify\n', '        - nme: verify\n', /(schema|fields): .*name/],
    ];
    for (const [from] of broken) expect(TEXT).toContain(from);
    const problems = schemaProblems(broken.map(([from, to]) => documents(TEXT.replace(from, to))[0]));
    for (const [i, [from, to, expected]] of broken.entries()) {
      expect(problems[i]!.join('\n'), `${from} -> ${to}`).toMatch(expected);
    }
  });

  it('runs completions = SHARDS pods, shard K = JOB_COMPLETION_INDEX + 1, at most `parallelism` at once', () => {
    expect(spec.completionMode).toBe('Indexed');
    expect(String(spec.completions)).toBe(env('SHARDS'));
    expect(spec.parallelism).toBeGreaterThan(0);
    expect(spec.parallelism).toBeLessThanOrEqual(spec.completions!);
    const script = verify.args!.join('\n');
    expect(verify.command).toEqual(['/bin/sh', '-c']);
    // 0-based index, 1-based shards
    expect(script).toMatch(/k=\$\(\(JOB_COMPLETION_INDEX \+ 1\)\)/);
    expect(script).toContain('--shard "$k/$SHARDS"');
  });

  it('the verify command uses flags the real CLI accepts: --all --shard K/N --boot=sample --junit', async () => {
    const script = verify.args!.join('\n');
    const commands = edgeimgCommands(script, { k: '1', SHARDS: env('SHARDS')!, JOB_COMPLETION_INDEX: '0' });
    expect(commands).toHaveLength(edgeimgMentions(script));
    expect(commands).toHaveLength(1);
    const argv = commands[0]!;
    const parsed = await dryParse(argv);
    expect(parsed).toMatchObject({ ok: true });
    if (!parsed.ok) return;
    expect(parsed.values).toMatchObject({ all: true, shard: `1/${env('SHARDS')}`, junit: `/data/results/junit-1-of-${env('SHARDS')}.xml` });
    expect(argv).toContain('--boot=sample');
  });

  it('fails fast per index and for the whole Job as docs/ci.md says (Kubernetes >= 1.29 fields)', () => {
    expect(pod.restartPolicy).toBe('Never'); // podFailurePolicy and backoffLimitPerIndex need it
    expect(spec.backoffLimitPerIndex).toBeGreaterThanOrEqual(0);
    expect(spec.activeDeadlineSeconds).toBeGreaterThan(0);
    const rules = spec.podFailurePolicy!.rules;
    const byExit = (code: number) => rules.find((r) => r.onExitCodes?.values.includes(code))?.action;
    expect([byExit(1), byExit(2), byExit(3)]).toEqual(['FailIndex', 'FailJob', 'FailJob']);
    expect(TEXT).toMatch(/Kubernetes >= 1\.29/);
  });

  it('mounts only the public trust anchor, read-only, from a Secret; no private key or age identity', () => {
    const trust = pod.volumes!.find((v) => v.name === 'trust')!;
    expect(trust.secret?.items).toEqual([{ key: 'signing.pub', path: '_signing/id_ed25519.pub' }]);
    expect(trust.secret?.defaultMode).toBe(0o444);
    expect(verify.volumeMounts!.find((m) => m.name === 'trust')).toMatchObject({ readOnly: true, mountPath: '/etc/edgeimg/trust' });
    expect(verify.args!.join('\n')).toContain('--secrets /etc/edgeimg/trust');
    const names = [...pod.containers, ...(pod.initContainers ?? [])].flatMap((c) => (c.env ?? []).map((e) => e.name));
    expect(names.filter((n) => /AGE|SIGNING|PASSWORD|TOKEN/.test(n))).toEqual([]);
  });

  it('every container has resource requests and a memory limit, runs as non-root without privilege escalation', () => {
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      expect(c.resources?.requests?.cpu, c.name).toBeDefined();
      expect(c.resources?.requests?.memory, c.name).toBeDefined();
      expect(c.resources?.limits?.memory, c.name).toBeDefined();
      expect(c.securityContext?.allowPrivilegeEscalation, c.name).toBe(false);
    }
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
  });
});
