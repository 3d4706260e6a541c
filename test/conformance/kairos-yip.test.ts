// Conformance: how Kairos v3.5.1 runs our cloud-config through yip v1.16.5 and immucore v0.11.2.
//
// - Stage order: immucore v0.11.2 pkg/dag/dag_normal_boot.go, RegisterNormalBoot, runs the
//   `initramfs` stage (chrooted into /sysroot, pkg/state/steps_shared.go RunStageOp) after the
//   persistent bind mounts and before switch-root, so its files exist before any service of the
//   real system. `boot` runs from cos-setup-boot.service (kairos-init v0.5.16
//   pkg/bundled/cloudconfigs/09_systemd_services.yaml), which has no ordering against k3s.service
//   or k0scontroller.service; after the first boot those start on their own (provider-kairos
//   v2.13.4 internal/provider/bootstrap.go oneTimeBootstrap enables them once).
// - Step types: mudler/yip v1.16.5 pkg/schema/schema.go, Stage/File/Directory, decoded by
//   gopkg.in/yaml.v2 (pkg/schema/loader_yip.go yipYAML.Load): File.Permissions is a uint32.
//   In a #cloud-config file a decode error in `stages:` is discarded and every stage of the file
//   dropped (pkg/schema/loader_cloudinit.go cloudInit.Load, "optimistically load data as yip yaml").
// - Cloud-init keys: same file, cloudInit.Load: `hostname` goes to `initramfs`, `users`,
//   `write_files`, `runcmd` to `boot`; write_files permissions is an octal string (parseOctal).
// - Parent directories: pkg/plugins/files.go writeFile creates a missing parent with the file's
//   mode plus 0100 (0744 for 0644); pkg/plugins/timesyncd.go Timesyncd writes
//   /etc/systemd/timesyncd.conf.d/10-yip.conf into a directory it creates with 0777 & umask.

import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/main.js';
import { copyCatalogue, type CatalogueCopy } from '../helpers/catalogue.js';
import { exampleNodes } from './helpers.js';
import { othersCanTraverse, yipParentDirMode } from './models/kairos.js';

/** Paths read at start-up by k3s, k0s, containerd or the trust store. */
const START_UP_READ = [/^\/etc\/rancher\//, /^\/var\/lib\/rancher\//, /^\/var\/lib\/k0s\//, /^\/etc\/k0s\//, /^\/usr\/local\/share\/ca-certificates\//, /^\/etc\/pki\//];

const kairosNodes = () => exampleNodes((s) => s.os === 'kairos');
const cfgOf = (userData: string): Record<string, any> => parseYaml(userData, { version: '1.1' }) as Record<string, any>;
const stepsOf = (cfg: Record<string, any>): Array<[string, any]> =>
  Object.entries((cfg.stages ?? {}) as Record<string, any[]>).flatMap(([stage, steps]) => steps.map((s): [string, any] => [stage, s]));

describe('yip/immucore stage order', () => {
  it('writes every file k3s, k0s, containerd or the trust store read at start in stages.initramfs', async () => {
    for (const { site, node, rendered } of await kairosNodes()) {
      const cfg = cfgOf(rendered.userData);
      let startUpFiles = 0;
      for (const [stage, step] of stepsOf(cfg)) {
        for (const f of step.files ?? []) {
          if (!START_UP_READ.some((re) => re.test(f.path))) continue;
          startUpFiles++;
          expect(stage, `${site.id}/${node.name} ${f.path}`).toBe('initramfs');
        }
        if ((step.commands ?? []).some((c: string) => /update-ca-(certificates|trust)/.test(c))) expect(stage, 'CA trust refresh').toBe('initramfs');
      }
      expect(startUpFiles, `${site.id}/${node.name} writes provider files`).toBeGreaterThan(0);
    }
  });

  it('uses only stages Kairos runs, and no step needs a running systemd in initramfs', async () => {
    for (const { rendered } of await kairosNodes()) {
      for (const [stage, step] of stepsOf(cfgOf(rendered.userData))) {
        expect(stage).toBe('initramfs');
        // immucore runs initramfs chrooted with no systemd: systemctl start/restart cannot work there
        for (const c of step.commands ?? []) expect(c).not.toMatch(/systemctl (start|restart|reload)/);
      }
    }
  });

  it('the top-level hostname lands in initramfs and users in boot, as yip converts them', async () => {
    for (const { node, rendered } of await kairosNodes()) {
      const cfg = cfgOf(rendered.userData);
      expect(rendered.userData.split('\n')[0]).toBe('#cloud-config'); // detect(): exact first line
      expect(cfg.hostname).toBe(node.hostname);
      expect(cfg.users.some((u: any) => u.groups.includes('admin'))).toBe(true); // kairos-agent CheckForUsers
    }
  });
});

describe('yip step types', () => {
  it('every example cloud-config passes our strict schema of yip and Kairos keys', async () => {
    const { validateKairosConfig } = await import('../../src/render/kairos/strict.js');
    for (const { site, node, rendered } of await kairosNodes()) {
      expect(validateKairosConfig(cfgOf(rendered.userData), site, node), `${site.id}/${node.name}`).toEqual([]);
    }
  });

  it('file modes are integers in stages and octal strings in write_files', async () => {
    for (const { rendered } of await kairosNodes()) {
      const cfg = cfgOf(rendered.userData);
      for (const [, step] of stepsOf(cfg)) for (const f of step.files ?? []) expect(Number.isInteger(f.permissions)).toBe(true);
      for (const f of cfg.write_files ?? []) expect(f.permissions).toMatch(/^0?[0-7]{3,4}$/);
    }
  });

  it('rejects a quoted mode inside stages.*.files, which would make yip drop every stage of the file', async () => {
    const { validateKairosConfig } = await import('../../src/render/kairos/strict.js');
    const errs = validateKairosConfig(
      { stages: { boot: [{ files: [{ path: '/etc/x', permissions: '0644', content: '' }] }] }, k3s: { enabled: true } },
      { kairos: { provider: 'k3s' } } as any,
      { role: 'controlplane' } as any,
    );
    expect(errs.map((e) => e.path)).toContain('/stages/boot/0/files/0/permissions');
  });
});

describe('NTP drop-in is readable by systemd-timesyncd', () => {
  it('models yip: a 0644 file in a missing directory gets a parent others cannot enter', () => {
    expect(yipParentDirMode(0o644)).toBe(0o744);
    expect(othersCanTraverse(yipParentDirMode(0o644))).toBe(false);
  });

  it('never writes into timesyncd.conf.d with a files entry; uses yip\'s timesyncd step', async () => {
    for (const { site, rendered } of await kairosNodes()) {
      const cfg = cfgOf(rendered.userData);
      for (const [, step] of stepsOf(cfg)) for (const f of step.files ?? []) expect(f.path).not.toMatch(/^\/etc\/systemd\/timesyncd\.conf\.d\//);
      const ntp = stepsOf(cfg).map(([, s]) => s.timesyncd).filter(Boolean);
      expect(ntp).toEqual([{ NTP: site.network.ntp.join(' ') }]);
    }
  });
});

describe('validate catches overlay typos Kairos would ignore', () => {
  let copy: CatalogueCopy | undefined;
  afterEach(() => copy?.cleanup());

  async function validate(dir: string): Promise<{ code: number; err: string }> {
    let err = '';
    const code = await main(['validate', '--catalogue', dir], { out: () => {}, err: (s) => (err += s) });
    return { code, err };
  }

  it('names the overlay file and line of `enable:` in a provider block', async () => {
    copy = copyCatalogue();
    copy.edit('overlays/site-kairos-journald.yaml', (t) => `${t}  - merge:\n      k3s:\n        enable: true\n`);
    const { code, err } = await validate(copy.catalogue);
    expect(code).toBe(1);
    expect(err).toMatch(/overlays\/site-kairos-journald\.yaml:\d+:9: .*unknown key "enable" in k3s \(did you mean "enabled"\?\)/);
    const line = Number(/site-kairos-journald\.yaml:(\d+):9/.exec(err)![1]);
    expect(copy.path('overlays/site-kairos-journald.yaml')).toBeTruthy();
    const text = (await import('node:fs')).readFileSync(copy.path('overlays/site-kairos-journald.yaml'), 'utf8').split('\n');
    expect(text[line - 1]!.trim()).toBe('enable: true');
  });

  it('names the line of a quoted permissions value inside stages.*.files', async () => {
    copy = copyCatalogue();
    copy.edit('overlays/site-kairos-journald.yaml', (t) => `${t}  - merge:\n      stages:\n        boot:\n          - files:\n              - path: /etc/x\n                permissions: "0644"\n                content: x\n`);
    const { code, err } = await validate(copy.catalogue);
    expect(code).toBe(1);
    expect(err).toMatch(/site-kairos-journald\.yaml:\d+:\d+: .*stages\.boot\[\d+\]\.files\[0\]\.permissions must be integer/);
  });

  it('rejects `enabled: "true"` (a string), which provider-kairos fails to decode', async () => {
    copy = copyCatalogue();
    copy.edit('overlays/site-kairos-journald.yaml', (t) => `${t}  - merge:\n      k3s:\n        enabled: "true"\n`);
    const { code, err } = await validate(copy.catalogue);
    expect(code).toBe(1);
    expect(err).toMatch(/k3s\.enabled must be boolean/);
  });
});
