// What differs between Kairos flavors for the files we write: which network manager reads the
// static address, and where the system trust store takes extra CAs.
//
// Kairos docs (Advanced/networking): Alpine flavors run connman, every systemd-based flavor runs
// systemd-networkd. Trust-store locations are each distribution's own conventions.

import type { SitePlan } from '../../catalogue/plan.js';
import { CatalogueError, excerpt } from '../../util/diagnostics.js';

export type NetworkManager = 'systemd-networkd' | 'connman';

export interface FlavorTraits {
  network: NetworkManager;
  /** Directory whose *.crt (or anchors) the trust command folds into the system bundle. */
  trustDir: string;
  trustCommand: string;
}

const DEBIAN_TRUST = { trustDir: '/usr/local/share/ca-certificates', trustCommand: 'update-ca-certificates' };

const FAMILIES: Record<string, FlavorTraits> = {
  ubuntu: { network: 'systemd-networkd', ...DEBIAN_TRUST },
  debian: { network: 'systemd-networkd', ...DEBIAN_TRUST },
  // Alpine's ca-certificates also reads /usr/local/share/ca-certificates.
  alpine: { network: 'connman', ...DEBIAN_TRUST },
  // kairos-init v0.5.16 (pkg/stages/steps_init.go) masks wicked and enables systemd-networkd on SUSE.
  opensuse: { network: 'systemd-networkd', trustDir: '/etc/pki/trust/anchors', trustCommand: 'update-ca-certificates' },
};

/**
 * Red Hat family images run NetworkManager and chronyd (kairos-init v0.5.16
 * pkg/values/packagemaps.go), which ignore the networkd and timesyncd files we write: a node
 * would boot with DHCP and no NTP servers. Refused until we write keyfiles and chrony.conf.
 */
const REFUSED: Record<string, string> = {
  fedora: 'Red Hat family',
  rockylinux: 'Red Hat family',
  almalinux: 'Red Hat family',
  centos: 'Red Hat family',
  rhel: 'Red Hat family',
};

/** Flavors are named `<distro>-<version>` (ubuntu-24.04, alpine-3.21, opensuse-leap-15.6). */
export function flavorTraits(site: SitePlan): FlavorTraits {
  const flavor = site.kairos!.flavor;
  const family = flavor.split('-')[0] ?? flavor;
  if (REFUSED[family] !== undefined) {
    throw new CatalogueError([
      {
        ...site.source,
        message: `site ${site.id}: Kairos flavor ${excerpt(flavor)} is not supported: ${REFUSED[family]} images run NetworkManager and chronyd, which ignore the systemd-networkd and timesyncd configuration edgeimg writes (use an ubuntu, debian, opensuse or alpine flavor)`,
      },
    ]);
  }
  const traits = FAMILIES[family];
  if (traits === undefined) {
    throw new CatalogueError([
      {
        ...site.source,
        message: `site ${site.id}: Kairos flavor ${excerpt(flavor)} is not supported by the renderer (known distributions: ${Object.keys(FAMILIES).sort().join(', ')})`,
      },
    ]);
  }
  return traits;
}
