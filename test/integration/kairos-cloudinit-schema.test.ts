// Every Kairos cloud-config we render must pass Debian's `cloud-init schema`: the NoCloud seed
// is cloud-init's format, and tools that read it validate the cloud-init keys (users, hostname)
// while leaving Kairos's own keys (install, stages, k3s, k0s) alone.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodePlan, SitePlan } from '../../src/catalogue/plan.js';
import { renderCloudConfig, k0sWorkerSite, k3sHaSite } from '../fixtures/kairos-secrets.js';
import { k0sSite, k3sSite } from '../fixtures/plans.js';

const available = (await execa('cloud-init', ['--version'], { reject: false }).catch(() => ({ exitCode: 127 }))).exitCode === 0;
if (!available) {
  if (process.env.CI) throw new Error('cloud-init is required in CI for the Kairos schema test (apt-get install cloud-init)');
  console.warn('\n*** cloud-init not found: SKIPPING the Kairos cloud-init schema test (apt-get install cloud-init) ***\n');
}

const cases: Array<[label: string, site: SitePlan, node: NodePlan]> = [
  ['k3s first server (VIP)', k3sSite, k3sSite.nodes[0]!],
  ['k3s joining server', k3sHaSite, k3sHaSite.nodes.find((n) => n.name === 'server-2')!],
  ['k3s agent', k3sSite, k3sSite.nodes[1]!],
  ['k0s controller+worker', k0sSite, k0sSite.nodes[0]!],
  ['k0s controller', k0sWorkerSite, k0sWorkerSite.nodes[0]!],
  ['k0s worker', k0sWorkerSite, k0sWorkerSite.nodes[1]!],
];

describe.skipIf(!available)('Kairos cloud-configs pass cloud-init schema', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgeimg-kairos-schema-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(cases)('%s', async (label, site, node) => {
    const path = join(dir, `${label.replace(/\W+/g, '-')}.yaml`);
    await writeFile(path, renderCloudConfig(site, node).text);
    const result = await execa('cloud-init', ['schema', '--config-file', path], { reject: false, all: true });
    expect(result.all).not.toMatch(/Invalid/i);
    expect(result.all).toContain('Valid cloud-config');
    expect(result.exitCode).toBe(0);
  });

  it('would catch an invalid users block', async () => {
    // Guards the check itself: cloud-init must reject what it does not accept.
    const path = join(dir, 'broken.yaml');
    await writeFile(path, '#cloud-config\nusers:\n  - name: kairos\n    groups: admin\n    ssh_authorized_keys: 7\n');
    const result = await execa('cloud-init', ['schema', '--config-file', path], { reject: false, all: true });
    expect(result.exitCode).not.toBe(0);
  });
});
