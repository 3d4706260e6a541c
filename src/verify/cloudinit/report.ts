// The report the reference NoCloud client prints (images/cloudinit/guest/edgeimg-cloudinit-report),
// typed for the fields the checks read. Everything else stays available in the parsed JSON.

export interface ClientInterface {
  name: string;
  /** Lower-case MAC; null for loopback and non-Ethernet links. */
  mac: string | null;
  operstate?: string;
  /** "a.b.c.d/prefix" */
  ipv4: string[];
  ipv6?: string[];
}

export interface ClientRoute {
  dst: string;
  gateway?: string | null;
  dev?: string | null;
  protocol?: string | null;
}

/** `cloud-init status --long --format json` (cloud-init 22.4.2 cmd/status.py handle_status_args). */
export interface CloudInitStatus {
  status?: string;
  boot_status_code?: string;
  datasource?: string;
  detail?: string;
  errors?: string[];
  last_update?: string;
  _stderr?: string;
}

export interface CloudInitClientReport {
  schema: number;
  nonce: string;
  uptimeSeconds?: number;
  collectSeconds?: number;
  sectionSeconds?: Record<string, number>;
  system: {
    hostname?: string;
    etcHostname?: string | null;
    failedUnits?: string[];
    kernel?: string;
    cmdline?: string;
    /** unit -> [started, active], seconds since boot (cloud-init's units and those on their way). */
    unitTimes?: Record<string, [number, number]>;
    kmsgEdgeimg?: string[];
    _error?: string;
  };
  cloudInit: {
    version?: string | null;
    statusExit?: number | null;
    status?: CloudInitStatus;
    /** /run/cloud-init/result.json: {"v1": {"datasource": ..., "errors": [...]}} */
    resultJson?: { v1?: { datasource?: string | null; errors?: string[] } } | null;
    statusJson?: unknown;
    enabledByGenerator?: boolean;
    disabledByGenerator?: boolean;
    dsIdentify?: string[];
    dsIdentifyCfg?: string | null;
    /** /var/lib/cloud/instance/datasource, e.g. "DataSourceNoCloud: DataSourceNoCloud [seed=/dev/sr0][dsmode=net]" */
    datasourceFile?: string | null;
    instanceId?: string | null;
    instanceData?: Record<string, unknown>;
    _error?: string;
  };
  userData: {
    rawBytes?: number | null;
    rawSha256?: string | null;
    firstLine?: string | null;
    /** MIME parts of /var/lib/cloud/instance/user-data.txt.i as cloud-init classified them. */
    parts?: Array<{ contentType: string; filename?: string | null; bytes: number }> | null;
    cloudConfig?: { exists: boolean; bytes?: number; sha256?: string; keys?: string[] | null; hostname?: string; users?: Array<string | null>; parseError?: string };
    localUsers?: Array<{ name: string; uid: number; shell: string }>;
    _error?: string;
  };
  network: {
    interfaces?: ClientInterface[];
    routes4?: ClientRoute[];
    dns?: {
      resolvConf?: string[];
      resolvConfTarget?: string;
      resolvedUplink?: string[];
      resolvectlDns?: string;
      perLink?: Record<string, string[]>;
      perLinkDomains?: Record<string, string[]>;
    };
    netplan?: Record<string, string | null>;
    networkdGenerated?: Record<string, string | null>;
    networkctl?: string;
    _error?: string;
  };
  log: {
    present?: boolean;
    bytes?: number;
    counts?: { WARNING: number; ERROR: number; CRITICAL: number };
    tracebacks?: number;
    /** WARNING/ERROR/CRITICAL lines of /var/log/cloud-init.log, first 60, each cut at 400 characters. */
    lines?: string[];
    outputTail?: string[];
    _error?: string;
  };
}

/** Minimal shape check: the sections the checks read exist and are objects. */
export function asClientReport(doc: unknown): CloudInitClientReport | string {
  if (typeof doc !== 'object' || doc === null) return 'the report is not a JSON object';
  const d = doc as Record<string, unknown>;
  if (d.schema !== 1) return `unsupported report schema ${JSON.stringify(d.schema)}`;
  for (const k of ['system', 'cloudInit', 'userData', 'network', 'log']) {
    if (typeof d[k] !== 'object' || d[k] === null) return `the report has no "${k}" section`;
  }
  return doc as CloudInitClientReport;
}
