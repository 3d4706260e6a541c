// What the reference NoCloud client's report must show for a node's seed. Each check names the
// cloud-init 22.4.2 behaviour it relies on (source: /usr/lib/python3/dist-packages/cloudinit of
// Debian's cloud-init 22.4.2-1+deb12u4, the version in the client image).

import type { CloudInitClientReport, ClientInterface } from './report.js';

export type SeedMedium = 'iso' | 'img';
/** Kairos user-data is a `#cloud-config`; Talos user-data is a machine config cloud-init must not take for one. */
export type UserDataKind = 'cloud-config' | 'not-cloud-config';

export interface CloudInitExpectation {
  hostname: string;
  /** The node's NIC MAC (lower or upper case). */
  mac: string;
  address: string;
  prefix: number;
  gateway: string;
  /** DNS servers, in order. */
  dns: string[];
  /** Search domains, in order; not checked when undefined. */
  searchDomains?: string[];
  userData: UserDataKind;
  /** The medium the seed was attached as: the datasource must name a device of that kind. */
  medium?: SeedMedium;
}

export interface CheckOutcome {
  check: string;
  ok: boolean;
  detail: string;
}

export interface WarningSummary {
  /** WARNING lines explained by the seed kind (e.g. Talos user-data is not a cloud-config). */
  expected: Array<{ line: string; reason: string }>;
  /** Everything else: worth a look, but not a failed check. */
  unexpected: string[];
  counts: { WARNING: number; ERROR: number; CRITICAL: number };
}

interface KnownWarning {
  re: RegExp;
  when: (e: CloudInitExpectation) => boolean;
  reason: string;
}

// cloudinit/handlers/__init__.py walker_callback: a user-data part whose content type has no
// handler is logged with LOG.warning("Unhandled non-multipart (%s) userdata: %s", ...) and
// skipped. user_data.py UserDataProcessor types a part by its first line
// (handlers.type_from_starts_with): a Talos machine config ("version: v1alpha1") matches no
// known start and becomes text/x-not-multipart. It is not an error: it never reaches
// status.json's errors list (cmd/main.py status_wrapper records only exceptions and returned
// failures).
const KNOWN_WARNINGS: KnownWarning[] = [
  {
    re: /\[WARNING\]: Unhandled non-multipart \(text\/x-not-multipart\) userdata: /,
    when: (e) => e.userData === 'not-cloud-config',
    reason: 'user-data is not a cloud-config (Talos machine config): cloud-init has no handler for it and skips it',
  },
];

export function summariseWarnings(report: CloudInitClientReport, expect: CloudInitExpectation): WarningSummary {
  const out: WarningSummary = {
    expected: [],
    unexpected: [],
    counts: report.log.counts ?? { WARNING: 0, ERROR: 0, CRITICAL: 0 },
  };
  for (const line of report.log.lines ?? []) {
    if (!/\[WARNING\]/.test(line)) continue;
    const k = KNOWN_WARNINGS.find((w) => w.re.test(line) && w.when(expect));
    if (k) out.expected.push({ line, reason: k.reason });
    else out.unexpected.push(line);
  }
  return out;
}

const norm = (mac: string): string => mac.trim().toLowerCase();
const eqList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
const show = (v: unknown): string => JSON.stringify(v);

/** The checks, in a fixed order; a check that cannot be evaluated (section missing) fails. */
export function checkCloudInitReport(report: CloudInitClientReport, expect: CloudInitExpectation): CheckOutcome[] {
  const out: CheckOutcome[] = [];
  const add = (check: string, ok: boolean, detail: string): void => {
    out.push({ check, ok, detail });
  };
  const ci = report.cloudInit;
  const st = ci.status ?? {};

  // 1. datasource. cmd/status.py get_status_details derives "datasource" from status.json's
  // v1.datasource, which is str(datasource): DataSourceNoCloud.__str__ gives
  // "DataSourceNoCloud [seed=<dev>][dsmode=net]" (sources/DataSourceNoCloud.py); <dev> is the
  // device the seed was mounted from (_get_devices: blkid TYPE=vfat|iso9660 and LABEL=CIDATA|cidata).
  {
    const detail = ci.datasourceFile ?? ci.resultJson?.v1?.datasource ?? st.detail ?? '';
    const m = /DataSourceNoCloud(?:Net)? \[seed=([^\]]*)\]/.exec(detail);
    const seed = m?.[1];
    let ok = st.datasource === 'nocloud' || st.datasource === 'nocloudnet';
    let why = `cloud-init reports datasource ${show(st.datasource ?? null)}`;
    if (ok && !m) {
      ok = false;
      why += ` but no "[seed=...]" in ${show(detail)}`;
    } else if (ok && expect.medium) {
      const want = expect.medium === 'iso' ? /^\/dev\/sr\d+$/ : /^\/dev\/sd[a-z]+\d*$/;
      if (!want.test(seed ?? '')) {
        ok = false;
        why += `, seed=${seed}: not a ${expect.medium === 'iso' ? 'CD-ROM (/dev/srN)' : 'USB disk (/dev/sdX)'}`;
      }
    }
    if (!ok && ci.disabledByGenerator) why += '; cloud-init was disabled by its generator (ds-identify found no datasource)';
    add('nocloud-datasource', ok, ok ? `${detail.replace(/^DataSourceNoCloud(Net)?: /, '').trim()}` : why);
  }

  // 2. status done, no errors. cmd/status.py: status "error" whenever status.json lists errors
  // (exit code 1); result.json (written by cmd/main.py status_wrapper after the last stage)
  // repeats them.
  {
    const errors = [...(st.errors ?? []), ...(ci.resultJson?.v1?.errors ?? [])];
    const ok = st.status === 'done' && errors.length === 0 && ci.statusExit === 0 && ci.resultJson != null;
    const why = [
      `status ${show(st.status ?? null)}`,
      st.boot_status_code ? `boot_status_code ${st.boot_status_code}` : '',
      ci.statusExit !== 0 ? `exit ${ci.statusExit}` : '',
      ci.resultJson == null ? 'no /run/cloud-init/result.json (cloud-init did not finish)' : '',
      errors.length ? `errors: ${[...new Set(errors)].join(' | ')}` : '',
      st._stderr ? `stderr: ${st._stderr}` : '',
    ].filter(Boolean).join('; ');
    add('status-done-no-errors', ok, ok ? `status done, no errors (${st.last_update ?? ''})` : why);
  }

  // 3. hostname: cc_set_hostname / cc_update_hostname set it from user-data "hostname" or
  // meta-data "local-hostname" (util.get_hostname_fqdn).
  {
    const h = report.system.hostname;
    const ok = h === expect.hostname && (report.system.etcHostname ?? h) === expect.hostname;
    add('hostname', ok, ok ? h! : `hostname ${show(h ?? null)}, /etc/hostname ${show(report.system.etcHostname ?? null)}; expected ${show(expect.hostname)}`);
  }

  // 4. the NIC with the node's MAC has exactly the node's static address.
  const ifaces = report.network.interfaces ?? [];
  const nic: ClientInterface | undefined = ifaces.find((i) => i.mac !== null && norm(i.mac ?? '') === norm(expect.mac));
  {
    const want = `${expect.address}/${expect.prefix}`;
    if (!nic) {
      add('static-address', false, `no interface with MAC ${norm(expect.mac)} (have: ${ifaces.map((i) => `${i.name}=${i.mac ?? '-'}`).join(', ')})`);
    } else {
      const ok = eqList(nic.ipv4, [want]);
      add('static-address', ok, ok ? `${nic.name} (${nic.mac}) has ${want}` : `${nic.name} (${nic.mac}) has IPv4 ${show(nic.ipv4)}; expected exactly ["${want}"]`);
    }
  }

  // 5. default route via the gateway, on that NIC.
  {
    const defaults = (report.network.routes4 ?? []).filter((r) => r.dst === 'default');
    const ok = !!nic && defaults.some((r) => r.gateway === expect.gateway && r.dev === nic.name);
    add(
      'default-route',
      ok,
      ok
        ? `default via ${expect.gateway} dev ${nic!.name}`
        : `default routes ${show(defaults.map((r) => `via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`))}; expected via ${expect.gateway}${nic ? ` dev ${nic.name}` : ''}`,
    );
  }

  // 6. DNS: netplan writes nameservers into the networkd .network file (DNS=, Domains=) and
  // systemd-resolved applies them per link; `resolvectl dns`/`domain` show them.
  {
    const dns = report.network.dns ?? {};
    const servers = nic ? (dns.perLink?.[nic.name] ?? []) : [];
    let ok = !!nic && eqList(servers, expect.dns);
    let why = nic ? `${nic.name} DNS ${show(servers)}; expected ${show(expect.dns)}` : 'no NIC with the node MAC';
    if (ok && expect.searchDomains) {
      const domains = dns.perLinkDomains?.[nic!.name] ?? [];
      if (!eqList(domains, expect.searchDomains)) {
        ok = false;
        why = `${nic!.name} search domains ${show(domains)}; expected ${show(expect.searchDomains)}`;
      }
    }
    const uplink = (dns.resolvedUplink ?? []).filter((l) => l.startsWith('nameserver ')).map((l) => l.slice(11).trim());
    add('dns', ok, ok ? `${nic!.name}: ${servers.join(' ')}${expect.searchDomains ? ` search ${expect.searchDomains.join(' ')}` : ''} (resolv.conf upstream: ${uplink.join(' ')})` : why);
  }

  // 7. user-data classification. user_data.py UserDataProcessor: a part starting with
  // "#cloud-config" gets Content-Type text/cloud-config; handlers/cloud_config.py
  // CloudConfigPartHandler merges such parts into /var/lib/cloud/instance/cloud-config.txt and
  // writes that file EMPTY when there were none (_write_cloud_config).
  {
    const parts = report.userData.parts ?? [];
    const types = parts.map((p) => p.contentType);
    const cc = report.userData.cloudConfig ?? { exists: false };
    const parsed = cc.exists && (cc.bytes ?? 0) > 0 && Array.isArray(cc.keys) && cc.keys.length > 0;
    if (report.userData.parts == null) {
      add('user-data', false, 'cloud-init did not process any user-data (/var/lib/cloud/instance/user-data.txt.i missing)');
    } else if (expect.userData === 'cloud-config') {
      const ok = types.includes('text/cloud-config') && parsed;
      add(
        'user-data',
        ok,
        ok
          ? `parsed as cloud-config (${types.join(', ')}); keys: ${cc.keys!.join(', ')}`
          : `expected a cloud-config: parts ${show(types)}, cloud-config.txt ${cc.exists ? `${cc.bytes} bytes, keys ${show(cc.keys ?? null)}` : 'missing'}${cc.parseError ? `, parse error ${cc.parseError}` : ''}`,
      );
    } else {
      const ok = !types.includes('text/cloud-config') && !parsed && types.length > 0;
      add(
        'user-data',
        ok,
        ok
          ? `not a cloud-config, as expected (${types.join(', ')}, ${parts.reduce((a, p) => a + p.bytes, 0)} bytes); cloud-config.txt ${cc.exists ? 'empty' : 'absent'}`
          : `user-data must not be taken for a cloud-config: parts ${show(types)}, cloud-config.txt keys ${show(cc.keys ?? null)}`,
      );
    }
  }

  // 8. cloud-init.log has no ERROR/CRITICAL lines (an error logged without failing a stage,
  // e.g. stages.py apply_network_config's "Unable to render networking", must not pass).
  {
    const counts = report.log.counts ?? { WARNING: 0, ERROR: 0, CRITICAL: 0 };
    const lines = (report.log.lines ?? []).filter((l) => /\[(ERROR|CRITICAL)\]/.test(l));
    const ok = report.log.present === true && counts.ERROR === 0 && counts.CRITICAL === 0;
    add(
      'log-no-errors',
      ok,
      ok
        ? `cloud-init.log: ${counts.WARNING} warning(s), no errors`
        : report.log.present !== true
          ? 'no /var/log/cloud-init.log'
          : `cloud-init.log: ${counts.ERROR} ERROR, ${counts.CRITICAL} CRITICAL: ${lines.slice(0, 3).join(' | ')}`,
    );
  }
  return out;
}
