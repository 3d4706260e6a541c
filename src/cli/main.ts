// The edgeimg command: argument parsing and output only. Everything it does is a library
// call a CI script could make itself (see src/index.ts).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CatalogueError, EnvironmentError, UsageError, VerifyError } from '../util/diagnostics.js';
import { generator } from '../version.js';
import { OutputError } from '../build/output.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, environment: 3 } as const;

const USAGE = `Usage:
  edgeimg validate [--catalogue DIR] [--strict] [--json]
  edgeimg build (--site ID [--site ID ...] | --all [--shard K/N]) [--catalogue DIR] [--out DIR]
                [--secrets DIR] [--media iso,img,onestick] [--cache DIR] [--allow-standin]
                [--strict] [--require-secrets] [--force] [--json]
  edgeimg verify (--site ID [--site ID ...] | --all [--shard K/N]) [--out DIR] [--catalogue DIR]
                [--boot[=all|sample] [--via seed|usb|pxe]] [--node NAME] [--cache DIR] [--jobs N]
                [--timeout S] [--junit FILE] [--json]
  edgeimg inspect PATH [--out DIR] [--site ID] [--node NAME] [--json]
  edgeimg flash --site ID (--node NAME | --class NAME) DEVICE [--out DIR] [--cache DIR] [--force] [--json]
  edgeimg images list [--catalogue DIR] [--cache DIR] [--check] [--json]
  edgeimg images import --class NAME [--os talos|kairos] [--version V] [--pin] FILE...
  edgeimg images pull [--class NAME] [--factory URL] [--only boot|netboot] [--timeout S] [--locked]
  edgeimg serve (--site ID [--site ID ...] | --all) [--out DIR] [--catalogue DIR] [--cache DIR]
                [--listen ADDR:PORT] [--for DURATION] [--allow-standin] [--serve-again] [--require-all]
                [--dnsmasq-conf FILE] [--events] [--json]
  edgeimg secrets status [--site ID ... | --all] [--json]
  edgeimg secrets reissue-admin --site ID
  edgeimg secrets import --site ID (FILE | --token TOKEN | --token-file FILE) [--force]
  edgeimg secrets encrypt|decrypt (--site ID ... | --all) [--secrets DIR] [--catalogue DIR]
  edgeimg secrets signing-key [--public | --allowed-signers]
  edgeimg publish --site ID --to REGISTRY/REPO[:TAG] [--out DIR] [--include-secrets] [--plain-http]
                [--chunk-size BYTES] [--timeout S] [--json]
  edgeimg pull REGISTRY/REPO[:TAG|@sha256:DIGEST] [--out DIR] [--catalogue DIR] [--secrets DIR]
                [--plain-http] [--timeout S] [--json]
  edgeimg report [--site ID ... | --all] --html FILE [--catalogue DIR] [--out DIR] [--secrets DIR]
                [--now TIME] [--json]
  edgeimg affected --base REF [--head REF] [--catalogue DIR] [--max-jobs N] [--json]

Options:
  --catalogue DIR   catalogue directory (default ./catalogue)
  --out DIR         output directory (default ./out)
  --secrets DIR     site secrets directory, kept out of git (default ./secrets, or $EDGEIMG_SECRETS_DIR)
  --media LIST      per-node media: iso (default), img (seed stick), onestick (Kairos), comma-separated
  --strict          treat catalogue warnings (e.g. an install disk that can name a USB stick) as errors
  --jobs N          QEMU boots at a time (default: number of cores)
  --timeout S       hard limit per QEMU boot in seconds (default 120)
  --json            print one machine-readable result object on stdout
  --debug           show stack traces for unexpected errors
Exit: 0 ok, 1 invalid catalogue or failed check, 2 usage error, 3 missing host tool or environment problem.`;

/** `edgeimg COMMAND --help`: what the command does, then its usage line(s). */
export const COMMAND_HELP: Record<string, string> = {
  inspect: `edgeimg inspect: say what a stick (or image file) is: whose seed it is (site, node, MAC,
hostname, OS) and whether it matches the site's manifest byte for byte.

  edgeimg inspect PATH [--out DIR] [--site ID] [--node NAME] [--json]

  --site, --node   the stick must be this site's / node's (a stick for another node fails)
  --catalogue DIR, --secrets DIR  where the fleet's public key is (CATALOGUE/signing.pub, else
                   SECRETS/_signing/id_ed25519.pub): the site's manifest.json.sig must verify
Exit: 0 the right, intact stick; 1 a problem (another node, a changed byte, truncated, unknown).`,
  flash: `edgeimg flash: write a node's seed stick image (--node), or the class boot stick a site's
nodes of a hardware class take (--class, from the image cache, as the site's manifest pins it),
to a USB stick or an image file; read it back and compare sha256. Refuses mounted devices, the
disk holding /, and devices over 256 GiB unless --force. Shows progress on a terminal.

  edgeimg flash --site ID (--node NAME | --class NAME) DEVICE [--out DIR] [--cache DIR] [--force] [--json]
Exit: 0 written and verified; 1 read-back mismatch; 2 refused or usage; 3 environment.`,
  validate: `edgeimg validate: check every catalogue file, cross-reference and overlay, rendering every node
with stand-in secrets; report every problem as FILE:LINE:COL: message.

  edgeimg validate [--catalogue DIR] [--strict] [--json]

  --strict   warnings (e.g. an install disk that can name a USB stick) are errors
Exit: 0 valid, 1 invalid.`,
  build: `edgeimg build: render configs, site PKI, seed media and a manifest for each selected site into
OUT/<site>. A failed build changes nothing in OUT; OUT/<site> is replaced only when it holds
edgeimg output for that site.

  edgeimg build (--site ID [--site ID ...] | --all [--shard K/N]) [--catalogue DIR] [--out DIR]
                [--secrets DIR] [--media iso,img,onestick] [--cache DIR] [--allow-standin]
                [--strict] [--require-secrets] [--force] [--json]

  --media LIST   per-node media, comma-separated: iso (default; seed ISO), img (seed stick:
                 FAT32, label CIDATA), onestick (Kairos: the class live ISO with the node's
                 config.yaml at its root, nodes/<node>/kairos-stick.iso; needs xorriso)
  --cache DIR    boot image cache (default $EDGEIMG_IMAGE_CACHE, else ./images/cache/boot). Each
                 class boot stick is linked once into OUT/_boot/<class>/<os>-<version>/, never
                 copied per site, when it is cached and matches images.lock
  --allow-standin  class boot images may be test stand-ins (make standin-images); marked as such
  --signing-key FILE  the fleet's Ed25519 signing key (OpenSSH format; else $EDGEIMG_SIGNING_KEY,
                 else SECRETS/_signing/id_ed25519, made once). Each site gets manifest.json.sig
                 (SSHSIG, namespace edgeimg-manifest) and SHA256SUMS (non-secret artifacts)
  --secrets DIR  site secrets (default ./secrets, or $EDGEIMG_SECRETS_DIR); never inside --out
  --require-secrets  every site must already have secrets: never mint a new PKI (for CI; also
                 EDGEIMG_REQUIRE_SECRETS=1)
  --force        rebuild every selected site. Without it a site whose OUT/<site> was built from
                 the same input digest (catalogue meaning, overlays, templates, image pins,
                 secrets, signing key, edgeimg version), with the same --media, and whose files
                 are all still there unchanged in size and mtime, is kept and reported as
                 unchanged ("status": "unchanged" in --json). verify checks the bytes.
Exit: 0 ok, 1 catalogue/render error or foreign output in the way, 2 usage, 3 environment.`,
  verify: `edgeimg verify: check built artifacts against their manifest (digests, seeds read back, Talos
schema, PKI); with --boot, boot every node's medium in QEMU and compare what the guest reads.

  edgeimg verify (--site ID [--site ID ...] | --all [--shard K/N]) [--out DIR] [--catalogue DIR]
                 [--boot[=all|sample] [--via seed|usb|pxe]] [--node NAME] [--cache DIR] [--jobs N]
                 [--timeout S] [--junit FILE] [--json]

  --all            every site of the catalogue (a site not built fails); --shard K/N takes every
                   Nth of them as build --shard does: the N shards together are exactly --all
  --boot=sample    boot one node per distinct (hardware class, arch, firmware, OS and version,
                   medium) across the selected sites; every node still gets the static checks
                   (docs/verify.md says why that is sound). --boot or --boot=all boots every node
  --via seed       (default) boot each node's seed medium with the probe kernel (direct kernel boot)
  --via usb        boot each node's field kit through real firmware (OVMF, SeaBIOS, AAVMF), the
                   sticks attached as USB mass storage: class boot stick + seed stick, and the
                   Kairos one-stick ISO when built. Needs stand-in class images (make
                   standin-images) and a build with --media img[,onestick]; default timeout 300 s
  --via pxe        boot each node over the network as edgeimg serve provisions it: serve on
                   127.0.0.1, QEMU with the node's MAC, firmware → iPXE ROM → boot.ipxe → the
                   class's netboot kernel/initrd (stand-ins) → the node's config URL; amd64 only
  --node NAME      boot only this node (repeatable; one --site)
  --cache DIR      boot image cache holding the class sticks (default ./images/cache/boot)
  --secrets DIR    where the fleet's public key is when the catalogue has no signing.pub
                   (default ./secrets, or $EDGEIMG_SECRETS_DIR); manifest.json.sig must verify
  --catalogue DIR  each site's nodes must be the catalogue's (default ./catalogue; skipped,
                   with a note, when it does not exist)
Exit: 0 all pass, 1 a check failed, 2 usage, 3 missing host tool.`,
  images: `edgeimg images: the boot image cache per hardware class (Talos Image Factory assets, Kairos
release assets), shared by all sites and pinned by sha256 in CATALOGUE/images.lock. A cached file
that differs from its pin is refused. See docs/images.md.

  edgeimg images list [--class NAME] [--os talos|kairos] [--version V] [--check] [--json]
      what every (hardware class, OS, version) the sites use needs: schematic ID, download URLs,
      and whether each asset is cached and matches its pin.
      --check   exit 1 unless every asset is cached and matches its pin
  edgeimg images import --class NAME [--os talos|kairos] [--version V] [--as NAME] [--pin | --locked] FILE...
      copy files into the cache offline; a file is matched to an asset by its name (or --as).
      An unpinned asset is pinned on import; a pinned one must match (else exit 1, nothing cached).
  edgeimg images pull [--class NAME] [--os talos|kairos] [--version V] [--only boot|netboot]
                      [--factory URL] [--kairos-releases URL] [--timeout S] [--pin | --locked]
      register each Talos schematic (POST /schematics; the factory's ID must equal edgeimg's) and
      download missing assets, checked against their pins; unpinned ones are pinned.
      --factory URL          Image Factory (default https://factory.talos.dev)
      --kairos-releases URL  Kairos release downloads (default https://github.com/kairos-io/kairos/releases/download)
      --timeout S            limit for a response and for each pause in a download (default 30)

  --catalogue DIR  catalogue holding images.lock (default ./catalogue)
  --cache DIR      the cache (default $EDGEIMG_IMAGE_CACHE, else ./images/cache/boot)
  --pin            replace a pin the file does not match (the upstream asset changed on purpose)
  --locked         never add a pin: an unpinned asset is refused (for CI)
Exit: 0 ok, 1 a file does not match its pin or the schematic ID differs, 2 usage,
3 no network, unreachable server, missing file or unwritable cache (the message names it).`,
  secrets: `edgeimg secrets: the site secrets lifecycle (docs/secrets.md). Site secrets live in
SECRETS/<site>/secrets.yaml (0600), or, when the Fleet names spec.secrets.ageRecipients,
encrypted as SECRETS/<site>/secrets.yaml.age; the identity for decrypting comes from the file
named by EDGEIMG_AGE_IDENTITY (or SOPS_AGE_KEY_FILE). edgeimg never rotates a CA.

  edgeimg secrets status [--site ID ... | --all] [--json]
      every CA's and the admin client certificate's notAfter and days left; warns under 30
      days, exit 1 when any is under 7 days
  edgeimg secrets reissue-admin --site ID
      a new admin client certificate (talosconfig) from the site's OS CA, valid one year;
      the CAs do not change; rebuild the site to get the new talosconfig
  edgeimg secrets import --site ID FILE [--force]
      Talos: adopt a running cluster's 'talosctl gen secrets' bundle (a new admin certificate
      is issued from its OS CA)
  edgeimg secrets import --site ID (--token TOKEN | --token-file FILE) [--force]
      Kairos: adopt an existing cluster's join token
  edgeimg secrets encrypt (--site ID ... | --all)
      store the sites' secrets encrypted to the Fleet's current age recipients (re-encrypts
      an encrypted store, e.g. after a recipient was added or removed); values never change
  edgeimg secrets decrypt (--site ID ... | --all)
      store them as plaintext secrets.yaml again
  edgeimg secrets signing-key ...
      the fleet's manifest signing key (edgeimg secrets signing-key --help)

  --secrets DIR    site secrets (default ./secrets, or $EDGEIMG_SECRETS_DIR)
  --catalogue DIR  the catalogue naming the sites, their OS and the age recipients (default ./catalogue)
  --force          import: replace the site's existing secrets (the old cluster identity is lost)
Exit: 0 ok; 1 a certificate expires within 7 days (status) or a check failed; 2 usage;
3 environment: missing or wrong age identity, unreadable or inconsistent secrets.`,
  publish: `edgeimg publish: push one built site (OUT/<site>) to an OCI registry as one artifact
(artifactType application/vnd.edgeimg.site.v1+json, one layer per file, titled with its path).
Every file is checked against manifest.json first; the same site always gives the same digest.
Secret artifacts (user-data, seeds, talosconfig, one-sticks) are left out unless
--include-secrets. See docs/oci.md.

  edgeimg publish --site ID --to REGISTRY/REPO[:TAG] [--out DIR] [--include-secrets] [--plain-http]
                  [--chunk-size BYTES] [--timeout S] [--json]

  --to REF           where to push: REGISTRY/REPOSITORY[:TAG] (tag default: latest)
  --include-secrets  publish the secret artifacts too: ANYONE WHO CAN PULL FROM THAT REPOSITORY
                     GETS THE CLUSTER'S KEYS. Only to a private repository with narrow credentials;
                     a registry is not a secrets store
  --plain-http       the registry speaks HTTP, not HTTPS (a lab or a local mirror)
  --chunk-size BYTES upload blobs larger than this in chunks of this size (default 8MiB, at most
                     64MiB: about what a push holds in memory at a time)
  --timeout S        limit for each answer and each pause in a transfer (default 60)
  Credentials: EDGEIMG_REGISTRY_USERNAME + EDGEIMG_REGISTRY_PASSWORD, else the registry's auths
  entry in $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json.
Exit: 0 pushed; 1 the site does not match its manifest, or the registry stored other bytes;
2 usage; 3 registry unreachable or authentication refused (the message names the URL).`,
  pull: `edgeimg pull: fetch a site published with edgeimg publish into OUT/<site>: every file is
checked against the artifact's digests and the signed manifest.json (the signature must verify
with the fleet key, as in verify) before the site replaces OUT/<site> in one rename. A failure
leaves OUT as it was; a directory edgeimg did not write is never replaced. See docs/oci.md.

  edgeimg pull REGISTRY/REPO[:TAG|@sha256:DIGEST] [--out DIR] [--catalogue DIR] [--secrets DIR]
               [--plain-http] [--timeout S] [--json]

  --catalogue DIR, --secrets DIR  where the fleet's public key is (CATALOGUE/signing.pub, else
                     SECRETS/_signing/id_ed25519.pub)
  --plain-http       the registry speaks HTTP, not HTTPS
  --timeout S        limit for each answer and each pause in a transfer (default 60)
Exit: 0 pulled and verified; 1 not an edgeimg site, a digest or the signature does not match,
or foreign output in the way; 2 usage; 3 registry unreachable or authentication refused.`,
  affected: `edgeimg affected: list the sites whose build inputs differ between two git revisions
of the catalogue repository (sites a pull request touches). Each revision is read with git into
a private temporary directory (the work tree is never touched) and planned as a build plans it;
sites are compared by the meaning of their inputs (the resolved site, the overlays it takes, its
class boot image pins, the pinned fleet signing key), so a comment-only edit lists no site, an
edited hardware class lists every site using it and a fleet default lists them all. No secrets
are read. Prints one site per line (stdout), the reasons on stderr.

  edgeimg affected --base REF [--head REF] [--catalogue DIR] [--max-jobs N] [--json]

  --base REF      the revision to compare with (e.g. origin/main, the pull request's base sha);
                  a shallow clone needs that history (actions/checkout: fetch-depth: 0)
  --head REF      the revision to check (default HEAD)
  --catalogue DIR the catalogue inside the repository (default ./catalogue)
  --max-jobs N    at most N shards in --json (default 256, GitHub Actions' matrix limit)
  --json          {"sites": [...], "removed": [...], "all", "changes": [{"site","reasons"}],
                  "shards": [{"index","count","shard":"K/N","sites","siteArgs"}], "base", "head"}
Exit: 0 ok (also when no site is affected), 1 the head revision's catalogue is invalid
(FILE:LINE:COL as validate prints it), 2 usage or unknown revision, 3 no git or not a repository.`,
  report: `edgeimg report: write a static HTML fleet report (one file, no external assets, opens
offline) from the catalogue and what was built and verified: per site OS and version, hardware
classes, nodes, last build (OUT/<site>/manifest.json), last verify result (OUT/<site>/verify/
summary.json; stale when the site was rebuilt since) and the Talos admin certificate's days
left (from the site secrets when readable, else "unknown"; no secret value is ever written).
Filters by country, region, tier, OS, verify state and certificate, and a search, kept in the
address (FILE#q=store-0412&verify=fail).

  edgeimg report [--site ID ... | --all] --html FILE [--catalogue DIR] [--out DIR] [--secrets DIR]
                 [--now TIME] [--json]

  --html FILE    where to write the page (atomically, mode 0644)
  --site ID      only these sites (repeatable); default, or --all: every site in the catalogue
  --out DIR      built sites (default ./out)
  --secrets DIR  site secrets, read for certificate dates only (default ./secrets, or
                 $EDGEIMG_SECRETS_DIR); encrypted ones need EDGEIMG_AGE_IDENTITY
  --now TIME     the time the report is as of (2026-12-01T20:00:00Z, 2026-12-01 or @SECONDS);
                 default SOURCE_DATE_EPOCH, else the newest verify result, else the newest build.
                 Never the clock: the same inputs give the same bytes
  --json         print the summary counts as one JSON object on stdout
Exit: 0 written; 1 invalid catalogue; 2 usage; 3 the report path cannot be written (named).`,
  serve: `edgeimg serve: provision the nodes of built sites over the network from this machine: an
iPXE script per MAC, the class's netboot files from the image cache (each verified against its
pin at start and refused, 503, if it changes), and each node's config (its user-data: cluster
keys) at most once per node, only within the serving window.

  edgeimg serve (--site ID [--site ID ...] | --all) [--out DIR] [--catalogue DIR] [--cache DIR]
                [--listen ADDR:PORT] [--for DURATION] [--allow-standin] [--serve-again] [--require-all]
                [--dnsmasq-conf FILE] [--events] [--json]

  --listen ADDR:PORT  where to listen (default 127.0.0.1:8080: this machine only). Nodes need the
                 laptop's address on their network (e.g. 10.4.12.5:8080) or 0.0.0.0:8080 (every
                 interface); every host on that network can then reach the server. Port 0: any
                 free port (printed)
  --for DURATION serve configs for this long (default 2h; 90s, 30m, 1h30m); then every config
                 request gets 410 and serve stops with its summary
  --serve-again  serve each config on every request, not once per node (a lab; anyone on the
                 network who knows a MAC gets that node's keys). Without it, kill -USR2 PID
                 re-arms every config once more
  --allow-standin  the netboot files may be test stand-ins (edgeimg images standin)
  --require-all  exit 1 unless every node fetched its config
  --dnsmasq-conf FILE  write a dnsmasq proxyDHCP + TFTP configuration for the --listen address's
                 interface: next to the store's own DHCP server it answers PXE clients with
                 boot information only (ipxe.efi / undionly.kpxe by TFTP, then this server's
                 boot.ipxe); run it as root with dnsmasq --conf-file=FILE (docs/pxe.md)
  --events       one JSON line per event on stdout as it happens (which MAC fetched what, sha256)
  --json         the summary as one JSON object on stdout when serve stops (after any --events)
  Routes (GET, HEAD): /boot.ipxe, /ipxe/<mac>, /nb/<mac>/kernel|initrd|squashfs, /config/<mac>
  with <mac> as aa-bb-cc-dd-ee-ff. Ctrl-C (or SIGTERM, SIGHUP) stops and prints which nodes
  fetched their config.
Exit: 0 stopped; 1 --require-all and a node did not fetch; 2 usage; 3 a site not built, no
catalogue, or the address in use.`,
};

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** stderr is an interactive terminal: progress is a redrawn bar (else plain lines). */
  isTTY?: boolean;
}

const defaultIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), isTTY: process.stderr.isTTY === true };

type Options = NonNullable<ParseArgsConfig['options']>;
const common = { debug: { type: 'boolean' }, json: { type: 'boolean' } } as const;

export function parse<T extends Options>(args: string[], options: T): ReturnType<typeof parseArgs<{ args: string[]; options: T & typeof common; strict: true }>> {
  try {
    return parseArgs({ args, options: { ...options, ...common }, allowPositionals: false, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  const debug = rest.includes('--debug');
  // `secrets signing-key --help` is the subcommand's own help
  const ownHelp = command === 'secrets' && rest[0] === 'signing-key';
  if (command !== undefined && COMMAND_HELP[command] !== undefined && !ownHelp && (rest.includes('--help') || rest.includes('-h'))) {
    io.out(`${COMMAND_HELP[command]}\n`);
    return EXIT.ok;
  }
  try {
    switch (command) {
      // each command loads only its own modules: `build` never pays for the verifier
      case 'validate':
        return await (await import('./validate.js')).runValidate(rest, io);
      case 'build':
        return await (await import('./build.js')).runBuild(rest, io);
      case 'verify':
        return await (await import('./verify.js')).runVerify(rest, io);
      case 'inspect':
        return await (await import('./field.js')).runInspect(rest, io);
      case 'flash':
        return await (await import('./field.js')).runFlash(rest, io);
      case 'images':
        return await (await import('./images.js')).runImages(rest, io);
      case 'serve':
        return await (await import('./serve.js')).runServe(rest, io);
      case 'secrets':
        return await (await import('./secrets.js')).runSecrets(rest, io);
      case 'publish':
        return await (await import('./oci.js')).runPublish(rest, io);
      case 'pull':
        return await (await import('./oci.js')).runPull(rest, io);
      case 'report':
        return await (await import('./report.js')).runReport(rest, io);
      case 'affected':
        return await (await import('./affected.js')).runAffected(rest, io);
      case '--version':
      case 'version':
        io.out(`${generator().version}\n`);
        return EXIT.ok;
      case '--help':
      case '-h':
      case 'help':
        io.out(`${USAGE}\n`);
        return EXIT.ok;
      default:
        throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
    }
  } catch (err) {
    return report(err, io, debug);
  }
}

/** File-system failures that are the environment's, not ours: a plain sentence with the path. */
const ENV_ERRNO: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'is a directory where a file was expected',
  EEXIST: 'already exists',
  ENXIO: 'is a FIFO or device with nothing on the other end',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EIO: 'input/output error',
};

function environmentProblem(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException | undefined;
  const what = e?.code !== undefined ? ENV_ERRNO[e.code] : undefined;
  if (what === undefined) return undefined;
  const path = e!.path ?? (e as { dest?: string }).dest;
  return path !== undefined ? `${path}: ${what} (${e!.code})` : `${what} (${e!.code}${e!.syscall ? ` in ${e!.syscall}` : ''})`;
}

function report(err: unknown, io: Io, debug: boolean): number {
  if (err instanceof CatalogueError) {
    io.err(`${err.message}\n`);
    const n = `${err.diagnostics.length} error${err.diagnostics.length === 1 ? '' : 's'}`;
    io.err(`edgeimg: ${n}; ${err.wrote === undefined ? 'nothing was written' : `the output directory is unchanged, but ${err.wrote}`}\n`);
    return EXIT.failed;
  }
  if (err instanceof OutputError) {
    io.err(`edgeimg: ${err.message}\nedgeimg: nothing was changed\n`);
    return EXIT.failed;
  }
  if (err instanceof UsageError) {
    io.err(`edgeimg: ${err.message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (err instanceof EnvironmentError) {
    io.err(`edgeimg: ${err.message}\n`);
    return EXIT.environment;
  }
  if (err instanceof VerifyError) {
    io.err(`edgeimg: ${err.message}\n`);
    return EXIT.failed;
  }
  const fsProblem = environmentProblem(err);
  if (fsProblem !== undefined) {
    io.err(`edgeimg: ${fsProblem}\n`);
    if (debug && (err as Error).stack) io.err(`${(err as Error).stack}\n`);
    return EXIT.environment;
  }
  const e = err as Error;
  io.err(`edgeimg: ${debug && e?.stack ? e.stack : `internal error: ${e?.message ?? String(err)}`}\n`);
  if (!debug) io.err('edgeimg: run again with --debug for details\n');
  return EXIT.failed;
}
