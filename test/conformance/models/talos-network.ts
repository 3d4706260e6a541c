// A model of how Talos v1.13.9 turns our network inputs into addresses on links, written from
// the facts of its source (no code carried over). Two inputs give a link its address:
//
// 1. The NoCloud network-config v2, read by
//    siderolabs/talos v1.13.9 internal/app/machined/pkg/runtime/v1alpha1/platform/nocloud/metadata.go
//    (Nocloud.applyNetworkConfigV2, applyNetworkConfigV2Ethernet):
//    - the Ethernet struct has `match.name` and `match.macaddress` only; any other match key
//      (driver, ...) is dropped by the YAML decoder;
//    - the link name is the `ethernets` key, unless `match.macaddress` equals (strings.EqualFold,
//      no globbing) the permanent address (else the current address) of a physical link, in
//      which case it becomes that link's name; `match.name` is never used;
//    - every `addresses` entry must parse as a prefix (netip.ParsePrefix), otherwise the whole
//      network-config is rejected with an error;
//    - `routes[].via` is the gateway; `to: default` or a prefix is the destination.
//    Talos' nocloud platform boots with net.ifnames=0 (nocloud.go, Nocloud.KernelArgs), so
//    kernel names eth0, eth1, ... are the names links have.
// 2. The machine config's LinkAliasConfig, resolved by
//    siderolabs/talos v1.13.9 internal/app/machined/pkg/controllers/network/link_alias_config.go
//    (LinkAliasConfigController.Run): a fixed alias whose selector matches more than one physical
//    link is skipped ("link selector matched multiple links, skipping"); a LinkConfig naming an
//    alias that resolved to no link configures nothing.

export interface HostLink {
  name: string;
  mac: string;
  driver: string;
}

export interface NoCloudResult {
  /** link name -> addresses, for links that exist on the host. */
  addresses: Map<string, string[]>;
  /** Addresses assigned to a name no host link has: Talos configures nothing with them. */
  dangling: Array<{ name: string; address: string }>;
  gateways: Map<string, string[]>;
  error?: string;
}

interface EthernetV2 {
  match?: { name?: string; macaddress?: string };
  addresses?: string[];
  routes?: Array<{ to?: string; via?: string }>;
}

const PREFIX = /^(\d{1,3}(\.\d{1,3}){3})\/(\d{1,2})$/;

export function talosNoCloudV2(config: { version?: number; ethernets?: Record<string, EthernetV2> }, links: HostLink[]): NoCloudResult {
  const result: NoCloudResult = { addresses: new Map(), dangling: [], gateways: new Map() };
  if (config.version !== 2) return { ...result, error: `network-config metadata version=${config.version} is not supported` };
  for (const key of Object.keys(config.ethernets ?? {}).sort()) {
    const eth = config.ethernets![key]!;
    let name = key;
    const want = eth.match?.macaddress;
    if (want) {
      const hit = links.find((l) => l.mac.toLowerCase() === want.toLowerCase());
      if (hit) name = hit.name;
    }
    const exists = links.some((l) => l.name === name);
    for (const addr of eth.addresses ?? []) {
      if (!PREFIX.test(addr)) return { ...result, error: `ParsePrefix(${JSON.stringify(addr)}): no '/'` };
      if (exists) result.addresses.set(name, [...(result.addresses.get(name) ?? []), addr]);
      else result.dangling.push({ name, address: addr });
    }
    for (const r of eth.routes ?? []) if (r.via && exists) result.gateways.set(name, [...(result.gateways.get(name) ?? []), r.via]);
  }
  return result;
}

/** Which physical link a fixed-name LinkAliasConfig selects: exactly one match, else none. */
export function resolveLinkAlias(match: string, links: HostLink[]): HostLink | undefined {
  const hits = links.filter((l) => evalLinkCel(match, l));
  return hits.length === 1 ? hits[0] : undefined;
}

/**
 * The subset of Talos' link-locator CEL our renderer writes: `mac(link.permanent_addr) == "…"`,
 * `glob("…", link.driver)` and `glob("…", mac(link.hardware_addr))`, joined by `&&`.
 */
export function evalLinkCel(expr: string, link: HostLink): boolean {
  return expr.split(' && ').every((term) => {
    let m = /^mac\(link\.permanent_addr\) == "([^"]+)"$/.exec(term);
    if (m) return link.mac.toLowerCase() === m[1]!.toLowerCase();
    m = /^glob\("([^"]+)", link\.driver\)$/.exec(term);
    if (m) return globMatch(m[1]!, link.driver);
    m = /^glob\("([^"]+)", mac\(link\.hardware_addr\)\)$/.exec(term);
    if (m) return globMatch(m[1]!, link.mac.toLowerCase());
    throw new Error(`model does not understand CEL term: ${term}`);
  });
}

function globMatch(glob: string, value: string): boolean {
  const re = new RegExp(`^${glob.replace(/[.+^${}()|\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')}$`);
  return re.test(value);
}
