// The iPXE scripts `edgeimg serve` answers with, from the handlebars templates in
// templates/ipxe/ (plain text: noEscape, strict). iPXE expands `${…}` in every command and
// splits commands at `||`, `&&` and `;`, and has no quoting; so what goes into a script is
// either checked to be safe (URLs, MACs, kernel arguments) or reduced to plain words (messages).

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import Handlebars from 'handlebars';
import { packagePath } from '../util/paths.js';
import { hostPort } from './options.js';
import type { Netboot, PlannedNode } from './plan.js';
import { assetPath, configPath } from './routes.js';

const compiled = new Map<string, Handlebars.TemplateDelegate>();

function render(name: 'boot' | 'node' | 'not-booting', data: Record<string, unknown>): string {
  let t = compiled.get(name);
  if (!t) {
    t = Handlebars.create().compile(readFileSync(packagePath('templates', 'ipxe', `${name}.ipxe.hbs`), 'utf8'), { strict: true, noEscape: true });
    compiled.set(name, t);
  }
  return t(data);
}

/** How long a refusal stays on the node's screen before iPXE hands back to the firmware. */
export const REFUSAL_SECONDS = 30;

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A Host header worth building URLs from: a DNS name or IP literal, with an optional port. */
export function validHost(h: string | undefined): boolean {
  if (h === undefined || h.length === 0 || h.length > 260) return false;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(h);
  if (!m) return false;
  if (m[2] !== undefined && Number(m[2]) > 65535) return false;
  const host = m[1]!;
  if (host.startsWith('[')) return isIP(host.slice(1, -1)) === 6;
  return isIP(host) === 4 || (host.length <= 253 && host.split('.').every((l) => LABEL.test(l)));
}

/**
 * The base URL a client reached us at: its Host header when valid (what the DHCP bootfile or
 * the technician typed, so the node can reach it again), else the address of the socket.
 */
export function baseUrl(host: string | undefined, localAddress: string | undefined, localPort: number | undefined): string {
  if (validHost(host)) return `http://${host!.toLowerCase()}`;
  const addr = (localAddress ?? '127.0.0.1').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  return `http://${hostPort(addr, localPort ?? 80)}`;
}

/** Message text for `echo`: plain words only (no `$`, `#`, `|`, `&`, `;`, braces or quotes). */
export function ipxeText(s: string): string {
  return s
    .replace(/[^A-Za-z0-9 .,:()/_+=@'-]/g, (c) => (c === '\n' || c === '\t' ? ' ' : c === ';' ? ',' : '?'))
    .replace(/'/g, '')
    .slice(0, 300);
}

export function bootScript(base: string): string {
  return render('boot', { base });
}

/**
 * The kernel command line of a node's network boot.
 * - Talos: the class's pinned cmdline with talos.platform=metal (see talosMetalArgs), plus
 *   talos.config=<this server>/config/<mac>.
 * - Kairos: as the Kairos netboot docs' iPXE script (kairos-io/kairos-docs
 *   content/en/docs/Installation/netboot.md): rd.neednet=1 ip=dhcp rd.cos.disable
 *   root=live:<squashfs URL> netboot install-mode config_url=<config URL> console=tty1
 *   console=ttyS0.
 * Both start with initrd=initrd: under UEFI the kernel's EFI stub finds the initrd iPXE loaded
 * by that name (the last segment of its URL) when the firmware path needs it; BIOS kernels
 * ignore it.
 */
export function kernelArgs(base: string, mac: string, os: PlannedNode['os'], nb: Netboot): string[] {
  const config = `${base}${configPath(mac)}`;
  if (os === 'talos') return ['initrd=initrd', ...nb.args, `talos.config=${config}`];
  return [
    'initrd=initrd',
    ...nb.args,
    'rd.neednet=1',
    'ip=dhcp',
    'rd.cos.disable',
    `root=live:${base}${assetPath(mac, 'squashfs')}`,
    'netboot',
    'install-mode',
    `config_url=${config}`,
    'console=tty1',
    'console=ttyS0',
  ];
}

export function osLabel(n: Pick<PlannedNode, 'os' | 'version'>): string {
  return `${n.os === 'talos' ? 'Talos' : 'Kairos'} ${n.version}`;
}

export function nodeScript(base: string, mac: string, n: PlannedNode, nb: Netboot): string {
  const standin = nb.kernel.standin ?? nb.initrd.standin ?? nb.rootfs?.standin;
  return render('node', {
    base,
    mac,
    site: n.site,
    node: n.node,
    osLabel: osLabel(n),
    osName: n.os === 'talos' ? 'Talos' : 'Kairos',
    hardwareClass: n.hardwareClass,
    arch: n.arch,
    kernelName: nb.kernel.name,
    kernelSha256: nb.kernel.sha256,
    initrdName: nb.initrd.name,
    initrdSha256: nb.initrd.sha256,
    rootfsName: nb.rootfs?.name ?? false,
    rootfsSha256: nb.rootfs?.sha256 ?? '',
    standin: standin ?? false,
    args: kernelArgs(base, mac, n.os, nb).join(' '),
  });
}

/** A script that says why, on the node's screen, and returns to the firmware (exit 1). */
export function notBootingScript(title: string, lines: string[]): string {
  return render('not-booting', { title: ipxeText(title), lines: lines.map(ipxeText), seconds: REFUSAL_SECONDS });
}
