// The Containerfile, statically (building it needs the base image from its registry, which tests
// cannot reach; `make container-image` builds it): its runtime stage installs every host tool the
// code needs, derived from the code (test/examples/lib/containerfile.ts); the build stage has what
// the probe image build checks for; the base is pinned; no secret enters the image.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  aptPackages, BASE_PACKAGES, BUILD_TOOL_PACKAGES, parseContainerfile, requiredPackages, scriptTools, type Stage,
} from './lib/containerfile.js';

const CONTAINERFILE = readFileSync('Containerfile', 'utf8');

function sources(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts')) out.set(p, readFileSync(p, 'utf8'));
  }
  return out;
}

/** The packages the code needs that the Containerfile's last stage does not install, with why. */
function missingRuntimePackages(containerfile: string, src: Map<string, string>): string[] {
  const runtime = parseContainerfile(containerfile).stages.at(-1)!;
  const installed = aptPackages(runtime);
  const req = requiredPackages(src);
  return [
    ...req.unknown,
    ...[...req.packages].filter(([pkg]) => !installed.has(pkg) && !BASE_PACKAGES.has(pkg)).map(([pkg, why]) => `${pkg} (${why[0]})`),
  ];
}

const { args, stages } = parseContainerfile(CONTAINERFILE);
const build = stages.find((s) => s.name === 'build');
const runtime = stages.at(-1)!;
const runs = (stage: Stage): string => stage.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');

describe('Containerfile', () => {
  it('installs every host tool the code runs, every firmware file it looks for, every package it tells people to install', () => {
    expect(missingRuntimePackages(CONTAINERFILE, sources('src'))).toEqual([]);
    // and what docs/ci.md promises beyond the code's needs: tools for people at a shell in the image
    for (const pkg of ['git', 'openssh-client', 'age', 'mtools', 'dosfstools']) expect(aptPackages(runtime)).toContain(pkg);
  });

  it('the check fails when a package goes missing or the code starts needing a tool it cannot place', () => {
    const src = sources('src');
    const withoutOvmf = CONTAINERFILE.replace(/ ovmf /, ' ');
    expect(withoutOvmf).not.toBe(CONTAINERFILE);
    expect(missingRuntimePackages(withoutOvmf, src).join('\n')).toMatch(/^ovmf \(/m);

    const withoutArm = CONTAINERFILE.replace(/ qemu-system-arm\b/, '');
    expect(missingRuntimePackages(withoutArm, src).join('\n')).toMatch(/^qemu-system-arm \(src\/verify\/qemu\.ts: names the executable qemu-system-aarch64\)/m);

    const newTool = new Map(src).set('src/verify/new-check.ts', "await execa('skopeo', ['inspect'])");
    expect(missingRuntimePackages(CONTAINERFILE, newTool)).toEqual(['src/verify/new-check.ts: spawns skopeo, which TOOL_PACKAGES does not place in a Debian package']);

    const newPath = new Map(src).set('src/verify/new-fw.ts', "const fw = '/usr/share/u-boot/qemu_arm64/u-boot.bin';");
    expect(missingRuntimePackages(CONTAINERFILE, newPath)[0]).toMatch(/looks for \/usr\/share\/u-boot\/.*PATH_PACKAGES/);

    const newHint = new Map(src).set('src/media/new.ts', 'throw new EnvironmentError("mksquashfs not found (install squashfs-tools)")');
    expect(missingRuntimePackages(CONTAINERFILE, newHint)).toEqual(['squashfs-tools (src/media/new.ts: tells people to install squashfs-tools)']);
  });

  it('builds edgeimg from this checkout and the probe image, with the tools images/probe/build.sh checks for', () => {
    expect(build).toBeDefined();
    const script = runs(build!);
    expect(script).toMatch(/\bnpm ci\b/);
    expect(script).toMatch(/\bnpm run build\b/);
    expect(script).toMatch(/\bmake probe-image\b/);
    const installed = aptPackages(build!);
    expect(installed).toContain('make');
    const tools = scriptTools(readFileSync('images/probe/build.sh', 'utf8'));
    expect(tools.length).toBeGreaterThan(5);
    for (const tool of tools) {
      expect(Object.keys(BUILD_TOOL_PACKAGES), `images/probe/build.sh checks for ${tool}: place it in BUILD_TOOL_PACKAGES`).toContain(tool);
      const pkg = BUILD_TOOL_PACKAGES[tool]!;
      if (!BASE_PACKAGES.has(pkg)) expect(installed, `${tool} (images/probe/build.sh)`).toContain(pkg);
    }
    // the runtime stage gets the built probe kernels, and edgeimg finds them there
    const copies = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies).toEqual(expect.arrayContaining([
      '--from=build /src/images/cache/probe/amd64 /opt/edgeimg/images/cache/probe/amd64',
      '--from=build /src/images/cache/probe/arm64 /opt/edgeimg/images/cache/probe/arm64',
    ]));
    const env = runtime.instructions.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
    expect(env).toContain('EDGEIMG_PROBE_DIR=/opt/edgeimg/images/cache/probe');
  });

  it('starts from a pinned Debian 12 Node 20 image, runs edgeimg as a non-root user, carries OCI labels', () => {
    for (const s of stages) expect(s.from).toMatch(/^docker\.io\/library\/node:20-bookworm-slim@sha256:[0-9a-f]{64}$/);
    expect(args.NODE_IMAGE).toBeDefined();
    const last = (op: string): string | undefined => runtime.instructions.filter((i) => i.op === op).at(-1)?.args;
    expect(last('ENTRYPOINT')).toBe('["edgeimg"]');
    expect(last('USER')).toMatch(/^(?!0\b|root\b)\S+/);
    const labels = runtime.instructions.filter((i) => i.op === 'LABEL').map((i) => i.args).join(' ');
    for (const key of ['title', 'description', 'version', 'revision', 'licenses', 'base.name']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
  });

  it('bakes in no secret: nothing from secrets/ is copied, no key in ENV, secrets/ is outside the build context', () => {
    for (const s of stages) {
      for (const i of s.instructions) {
        if (i.op === 'COPY' || i.op === 'ADD') expect(i.args).not.toMatch(/secrets|\.age\b|id_ed25519|identity/);
        if (i.op === 'ENV' || i.op === 'ARG') expect(i.args).not.toMatch(/AGE_IDENTITY|SIGNING_KEY|PASSWORD|TOKEN/);
      }
    }
    const ignore = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['secrets/', '**/secrets.yaml', '**/secrets.yaml.age', '**/id_ed25519', 'node_modules/', 'out/', 'images/cache/']) {
      expect(ignore).toContain(entry);
    }
  });
});
