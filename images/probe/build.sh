#!/usr/bin/env bash
# Build the edgeimg boot-verification probe image (kernel + initramfs) from Debian packages.
#
#   images/probe/build.sh [--arch amd64|arm64|all] [--out DIR] [--force]
#
# Nothing is installed on the host: the packages are fetched with `apt-get download` using a
# private apt state directory (its own package lists, both architectures) under the cache, and
# unpacked with `dpkg -x`. Output, per architecture:
#
#   <out>/<arch>/vmlinuz        kernel that `qemu-system-* -kernel` accepts
#   <out>/<arch>/initrd.img     newc cpio, gzip: busybox + storage/fs (+ NIC) modules + /init
#   <out>/<arch>/manifest.json  package names, versions and sha256s; input and output hashes
#   <out>/arm64/netboot.efi     GRUB image for the network boot of arm64 nodes (UEFI HTTP boot);
#                               only where grub-mkimage matches grub-efi-arm64-bin:arm64
#
# The cache is keyed by the manifest inputs (Debian package versions + sha256s, and the hashes of
# this script and of the probe init): when nothing changed the build is a no-op. The initramfs is
# reproducible: sorted entries, fixed mtimes (SOURCE_DATE_EPOCH), owner root, `gzip -n`.
set -euo pipefail
umask 022
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="$repo/images/cache/probe"
arches=(amd64 arm64)
force=0

while [ $# -gt 0 ]; do
  case "$1" in
    --arch)
      case "${2:-}" in
        amd64|arm64) arches=("$2") ;;
        all) arches=(amd64 arm64) ;;
        *) echo "build.sh: --arch must be amd64, arm64 or all" >&2; exit 2 ;;
      esac
      shift 2 ;;
    --out) out=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

for tool in apt-get apt-cache dpkg dpkg-deb cpio gzip sha256sum flock find sort; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build.sh: required tool not found: $tool" >&2; exit 3; }
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "probe-image: $*" >&2; }
cleanup_dirs=()
cleanup() { local d; for d in "${cleanup_dirs[@]}"; do rm -rf "$d"; done; }
trap cleanup EXIT

# One build at a time per cache directory (parallel test workers may all ask for it).
exec 9>"$out/.lock"
flock 9

# ---------------------------------------------------------------------------------------------
# Private apt state: package lists for amd64 and arm64, without touching the host's apt config.
# ---------------------------------------------------------------------------------------------
aptdir="$out/apt"
mkdir -p "$aptdir/lists/partial" "$aptdir/archives/partial" "$aptdir/debs"
[ -f "$aptdir/status" ] || : >"$aptdir/status"
sourceparts=/etc/apt/sources.list.d
sourcelist=/etc/apt/sources.list
[ -f "$sourcelist" ] || sourcelist=/dev/null
APT_OPTS=(
  -o "Dir::State::Lists=$aptdir/lists"
  -o "Dir::State::status=$aptdir/status"
  -o "Dir::Cache=$aptdir"
  -o "Dir::Cache::archives=$aptdir/archives"
  -o "Dir::Cache::pkgcache=pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=srcpkgcache.bin"
  -o "Dir::Etc::SourceParts=$sourceparts"
  -o "Dir::Etc::sourcelist=$sourcelist"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures::=amd64"
  -o "APT::Architectures::=arm64"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
)

log "updating private package lists ($aptdir)"
if ! apt-get "${APT_OPTS[@]}" -qq update >"$aptdir/update.log" 2>&1; then
  if ls "$aptdir/lists/"*_Packages* >/dev/null 2>&1; then
    log "warning: apt-get update failed (see $aptdir/update.log); using the package lists from the last update"
  else
    cat "$aptdir/update.log" >&2
    echo "build.sh: apt-get update failed and no cached package lists exist" >&2
    exit 3
  fi
fi

# load PKG:ARCH caches the candidate's apt-cache record (call it directly, not in $(...));
# field PKG:ARCH FIELD then prints one field of it.
declare -A stanzas=()
load() {
  if [ -z "${stanzas[$1]:-}" ]; then
    stanzas[$1]=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null || true)
    [ -n "${stanzas[$1]}" ] || { echo "build.sh: package $1 not found in the package lists" >&2; exit 3; }
  fi
}
field() {
  printf '%s\n' "${stanzas[$1]:-}" | sed -n "s/^$2: //p" | head -n1
}

# The versioned kernel package behind the linux-image-<arch> metapackage.
resolve_kernel_pkg() {
  local arch=$1 dep
  dep=$(field "linux-image-$arch:$arch" Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//' |
    grep -E "^linux-image-[0-9].*-$arch\$" | head -n1)
  [ -n "$dep" ] || { echo "build.sh: cannot resolve linux-image-$arch to a versioned kernel package" >&2; exit 3; }
  echo "$dep"
}

# fetch PKG ARCH -> prints the path of the verified .deb (downloads only when not cached)
fetch() {
  local pkg=$1 arch=$2 version sha deb
  version=$(field "$pkg:$arch" Version)
  sha=$(field "$pkg:$arch" SHA256)
  [ -n "$version" ] && [ -n "$sha" ] || { echo "build.sh: package $pkg:$arch not found" >&2; exit 3; }
  deb="$aptdir/debs/${pkg}_${version#*:}_${arch}.deb"
  if [ ! -f "$deb" ] || [ "$(sha256sum <"$deb" | cut -d' ' -f1)" != "$sha" ]; then
    log "downloading $pkg:$arch $version"
    rm -f "$deb"
    local tmpd
    tmpd=$(mktemp -d "$aptdir/debs/.dl.XXXXXX")
    (cd "$tmpd" && apt-get "${APT_OPTS[@]}" -qq download "$pkg:$arch=$version" >/dev/null)
    mv -f "$tmpd"/*.deb "$deb" 2>/dev/null || true
    rm -rf "$tmpd"
    [ -f "$deb" ] || { echo "build.sh: download of $pkg:$arch produced no $deb" >&2; exit 3; }
    [ "$(sha256sum <"$deb" | cut -d' ' -f1)" = "$sha" ] || { echo "build.sh: sha256 mismatch for $deb" >&2; exit 3; }
  fi
  echo "$deb"
}

json_pkg() { # name arch version sha256
  printf '    { "name": "%s", "architecture": "%s", "version": "%s", "sha256": "%s" }' "$1" "$2" "$3" "$4"
}

# Modules the probe needs, in addition to whatever is built into the kernel. Dependencies
# (depends= and softdep pre:) are resolved from each module's .modinfo section.
WANTED_COMMON=(
  # crypto providers for sd_mod's t10-pi dependency (otherwise requested via modprobe)
  crct10dif_generic crc64_rocksoft_generic
  # block-device transports used by src/verify/qemu.ts: virtio-blk, virtio-scsi (scsi-cd),
  # qemu-xhci + usb-storage
  virtio_pci virtio_blk virtio_scsi
  sr_mod sd_mod
  xhci_pci usb_storage
  # filesystems and code pages (Debian: vfat codepage=437, iocharset=ascii + utf8=1)
  isofs vfat nls_cp437 nls_utf8 nls_iso8859_1 nls_ascii
  # /sys/firmware/qemu_fw_cfg: a firmware-booted stand-in ISO (images/standin/) reads its per-run
  # nonce and media count from QEMU fw_cfg items, its kernel command line being fixed in grub.cfg
  qemu_fw_cfg
)
# q35's ICH9 AHCI controller (ide-cd); virt's virtio-mmio transport
WANTED_amd64=(ahci)
WANTED_arm64=(virtio_mmio)
# Network configuration mode only (a netbooted node, images/probe/README.md): the NICs of the
# QEMU netboot checks -- virtio-net (deps failover/net_failover), and on amd64 also e1000. Listed
# in /etc/probe-net-modules, loaded only in that mode, so media boots do not pay for them.
WANTED_NET_COMMON=(virtio_net)
WANTED_NET_amd64=(e1000)
WANTED_NET_arm64=()
# Module parameters applied at load time.
declare -A MODPARAMS=([usb_storage]="delay_use=0")

# arm64 network boot (images/probe/README.md, "Network boot"): Debian has no arm64 iPXE, but
# AAVMF's own UEFI HTTP boot loads an EFI binary from the DHCP boot-file URL. netboot.efi is a
# GRUB image (grub-efi-arm64-bin:arm64 modules, the host's grub-mkimage) whose memdisk holds the
# grub.cfg below (as grub-mkstandalone does: an embedded config runs in GRUB's rescue parser,
# without if/for): DHCP, then the GRUB script /grub/<mac aa-bb-..> from the host:port of its own
# boot-file URL, which loads /nb/<mac>/kernel and initrd the way /ipxe/<mac> does for iPXE.
NETBOOT_GRUB_MODULES=(memdisk tar net efinet http linux echo normal configfile regexp test sleep reboot eval true)
netboot_grub_cfg() {
  cat <<'EOF'
# edgeimg netboot.efi (arm64): loaded by the firmware's UEFI HTTP boot from the DHCP boot file
# http://<host:port>/...; fetches http://<host:port>/grub/<mac aa-bb-cc-dd-ee-ff> and runs it.
set timeout=0
net_bootp
for n in 0 1 2 3 4 5 6 7; do
  eval "set bf=\$net_efinet${n}_dhcp_boot_file; set mac=\$net_efinet${n}_dhcp_mac"
  if [ -n "$bf" ]; then break; fi
done
if regexp --set=1:hp '^http://([^/]+)/' "$bf"; then
  if regexp --set=1:m1 --set=2:m2 --set=3:m3 --set=4:m4 --set=5:m5 --set=6:m6 '^(..):(..):(..):(..):(..):(..)$' "$mac"; then
    echo "edgeimg netboot: (http,$hp)/grub/$m1-$m2-$m3-$m4-$m5-$m6"
    configfile "(http,$hp)/grub/$m1-$m2-$m3-$m4-$m5-$m6"
  fi
fi
echo "edgeimg netboot: no boot script (DHCP boot file '$bf', MAC '$mac'); rebooting in 10 s"
sleep 10
reboot
EOF
}

# extract_vmlinux BZIMAGE OUT: decompress the payload of an x86 bzImage (boot protocol >= 2.08:
# payload_offset at 0x248, payload_length at 0x24c, relative to the protected-mode code that
# starts after (setup_sects + 1) * 512 bytes). Returns 1 when it is not an ELF afterwards.
extract_vmlinux() {
  local img=$1 dst=$2 setup off len start magic
  [ "$(dd if="$img" bs=1 skip=514 count=4 2>/dev/null)" = HdrS ] || return 1
  setup=$(od -An -tu1 -j 497 -N 1 "$img" | tr -d ' ')
  [ "$setup" = 0 ] && setup=4
  off=$(od -An -tu4 -j 584 -N 4 "$img" | tr -d ' ')
  len=$(od -An -tu4 -j 588 -N 4 "$img" | tr -d ' ')
  start=$(((setup + 1) * 512 + off))
  magic=$(od -An -tx1 -j "$start" -N 4 "$img" | tr -d ' ')
  case "$magic" in
    fd377a58) tail -c +$((start + 1)) "$img" | head -c "$len" | xz -dc --single-stream >"$dst" ;;
    1f8b*) tail -c +$((start + 1)) "$img" | head -c "$len" | gzip -dc >"$dst" 2>/dev/null || true ;;
    28b52ffd) tail -c +$((start + 1)) "$img" | head -c "$len" | zstd -dcq >"$dst" ;;
    *) return 1 ;;
  esac
  [ "$(head -c 4 "$dst" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || { rm -f "$dst"; return 1; }
  chmod 0644 "$dst"
}

build_arch() {
  local arch=$1 kpkg kdeb bdeb kver kmeta_ver bver kimg
  load "linux-image-$arch:$arch"
  kpkg=$(resolve_kernel_pkg "$arch")
  load "$kpkg:$arch"
  load "busybox-static:$arch"
  kmeta_ver=$(field "linux-image-$arch:$arch" Version)
  local kver_deb ksha bsha
  kver_deb=$(field "$kpkg:$arch" Version)
  ksha=$(field "$kpkg:$arch" SHA256)
  bver=$(field "busybox-static:$arch" Version)
  bsha=$(field "busybox-static:$arch" SHA256)
  local init_sha build_sha
  init_sha=$(sha256sum <"$here/init" | cut -d' ' -f1)
  build_sha=$(sha256sum <"$here/build.sh" | cut -d' ' -f1)
  # arm64: netboot.efi needs grub-efi-arm64-bin:arm64 of the same version as the host's
  # grub-common (grub-mkimage); without them the build goes on without netboot.efi.
  local gver='' gsha='' hgver='' netboot_note=''
  if [ "$arch" = arm64 ]; then
    hgver=$(dpkg-query -W -f='${Version}' grub-common 2>/dev/null || true)
    stanzas[grub-efi-arm64-bin:arm64]=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions grub-efi-arm64-bin:arm64 2>/dev/null || true)
    gver=$(field grub-efi-arm64-bin:arm64 Version)
    gsha=$(field grub-efi-arm64-bin:arm64 SHA256)
    if ! command -v grub-mkimage >/dev/null 2>&1; then
      netboot_note="grub-mkimage not found (apt-get install grub-common)"
    elif [ -z "$gver" ] || [ -z "$gsha" ]; then
      netboot_note="grub-efi-arm64-bin:arm64 not in the package lists"
    elif [ "$gver" != "$hgver" ]; then
      netboot_note="grub-efi-arm64-bin $gver differs from the host's grub-common ${hgver:-(none)}"
    fi
  fi
  local key
  key=$(printf '%s\n' "$arch" "$kpkg=$kver_deb:$ksha" "busybox-static=$bver:$bsha" "init=$init_sha" "build=$build_sha" \
    ${gver:+"grub-efi-arm64-bin=$gver:$gsha:$hgver"} ${netboot_note:+"netboot=none"} |
    sha256sum | cut -d' ' -f1)

  local dest="$out/$arch"
  if [ "$force" = 0 ] && [ -f "$dest/manifest.json" ] && [ -f "$dest/vmlinuz" ] && [ -f "$dest/initrd.img" ] &&
    grep -q "\"key\": \"$key\"" "$dest/manifest.json"; then
    log "$arch: up to date ($kpkg $kver_deb, busybox-static $bver)"
    return 0
  fi

  local t0=$SECONDS
  kdeb=$(fetch "$kpkg" "$arch")
  bdeb=$(fetch busybox-static "$arch")

  local work
  work=$(mktemp -d "$out/.build-$arch.XXXXXX")
  cleanup_dirs+=("$work")
  mkdir -p "$work/kpkg" "$work/bb" "$work/root"
  dpkg-deb -x "$kdeb" "$work/kpkg"
  dpkg-deb -x "$bdeb" "$work/bb"

  kver=$(basename "$(find "$work/kpkg/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")
  local kdir="$work/kpkg/lib/modules/$kver"
  kimg=$(find "$work/kpkg/boot" -name "vmlinuz-$kver" | head -n1)
  [ -n "$kimg" ] || { echo "build.sh: no vmlinuz in $kdeb" >&2; exit 3; }

  # ---- modules: index by normalised name (- and _ are equivalent in module names)
  declare -A modpath=()
  local f n
  while read -r n f; do modpath[$n]=$f; done < <(cd "$kdir" && find kernel -name '*.ko' | sort |
    awk -F/ '{ n = $NF; sub(/\.ko.*$/, "", n); gsub(/-/, "_", n); print n " " $0 }')
  declare -A builtin=()
  while read -r n; do builtin[$n]=1; done < <(awk -F/ '{ n = $NF; sub(/\.ko.*$/, "", n); gsub(/-/, "_", n); print n }' \
    "$kdir/modules.builtin")

  declare -A seen=()
  local -a order=()
  visit() {
    local name=${1//-/_} path info dep
    [ -n "${seen[$name]:-}" ] && return 0
    seen[$name]=1
    [ -n "${builtin[$name]:-}" ] && return 0
    path=${modpath[$name]:-}
    if [ -z "$path" ]; then
      # softdeps name crypto algorithms; "<alg>_generic" is the module that provides them
      if [ -n "${modpath[${name}_generic]:-}" ]; then visit "${name}_generic"; return 0; fi
      echo "build.sh: $arch: module $name is neither built in nor shipped in $kpkg" >&2
      exit 3
    fi
    info=$(tr '\0' '\n' <"$kdir/$path" | grep -E '^(depends|softdep)=' || true)
    for dep in $(printf '%s\n' "$info" | sed -n 's/^softdep=.*pre: *\([^:]*\)\( post:.*\)\{0,1\}$/\1/p'); do
      visit "$dep"
    done
    for dep in $(printf '%s\n' "$info" | sed -n 's/^depends=//p' | tr ',' ' '); do
      visit "$dep"
    done
    order+=("$name")
  }
  local wanted=("${WANTED_COMMON[@]}")
  if [ "$arch" = amd64 ]; then wanted+=("${WANTED_amd64[@]}"); else wanted+=("${WANTED_arm64[@]}"); fi
  for n in "${wanted[@]}"; do visit "$n"; done
  # network modules (and those of their dependencies not loaded for media anyway) go last, in
  # a list of their own
  local nmedia=${#order[@]}
  local netwanted=("${WANTED_NET_COMMON[@]}")
  if [ "$arch" = amd64 ]; then netwanted+=("${WANTED_NET_amd64[@]}"); else netwanted+=("${WANTED_NET_arm64[@]}"); fi
  for n in "${netwanted[@]}"; do visit "$n"; done

  # ---- initramfs tree
  local root="$work/root"
  mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/mnt/cidata" "$root/etc" \
    "$root/lib/modules/$kver"
  cp "$work/bb/bin/busybox" "$root/bin/busybox"
  chmod 0755 "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  cp "$here/init" "$root/init"
  chmod 0755 "$root/init"
  : >"$root/etc/probe-modules"
  : >"$root/etc/probe-net-modules"
  local k=0 list
  for n in "${order[@]}"; do
    local rel=${modpath[$n]}
    mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
    cp "$kdir/$rel" "$root/lib/modules/$kver/$rel"
    chmod 0644 "$root/lib/modules/$kver/$rel"
    if [ "$k" -lt "$nmedia" ]; then list=probe-modules; else list=probe-net-modules; fi
    printf '%s %s\n' "/lib/modules/$kver/$rel" "${MODPARAMS[$n]:-}" | sed 's/ *$//' >>"$root/etc/$list"
    k=$((k + 1))
  done
  printf '%s\n' "$kver" >"$root/etc/probe-kernel"
  chmod 1777 "$root/tmp"

  local epoch=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$kimg")}
  find "$root" -exec touch -h -d "@$epoch" {} +
  (cd "$root" && find . -mindepth 1 | sed 's|^\./||' | sort |
    cpio --quiet -o -H newc --reproducible -R 0:0) | gzip -9 -n >"$work/initrd.img"

  # ---- kernel. arm64: qemu needs the raw Image (Debian's may be gzip-compressed).
  # amd64: the bzImage as shipped (vmlinuz), plus the uncompressed ELF vmlinux taken out of it
  # (vmlinux): the kernel has CONFIG_PVH, so qemu boots the ELF directly through its PVH entry,
  # which skips the in-guest decompression (~4 s under TCG).
  if [ "$arch" = arm64 ] && [ "$(head -c2 "$kimg" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
    gzip -dc <"$kimg" >"$work/vmlinuz"
  else
    cp "$kimg" "$work/vmlinuz"
  fi
  if [ "$arch" = arm64 ] && [ "$(dd if="$work/vmlinuz" bs=1 skip=56 count=4 2>/dev/null)" != "ARMd" ]; then
    echo "build.sh: arm64 kernel is not a raw arm64 Image" >&2
    exit 3
  fi
  local have_vmlinux=0
  if [ "$arch" = amd64 ] && grep -q '^CONFIG_PVH=y' "$work/kpkg/boot/config-$kver" 2>/dev/null; then
    extract_vmlinux "$work/vmlinuz" "$work/vmlinux" && have_vmlinux=1
  fi
  local have_netboot=0
  if [ "$arch" = arm64 ] && [ -z "$netboot_note" ]; then
    local gdeb
    gdeb=$(fetch grub-efi-arm64-bin arm64)
    mkdir -p "$work/grub"
    dpkg-deb -x "$gdeb" "$work/grub"
    mkdir -p "$work/memdisk/boot/grub"
    netboot_grub_cfg >"$work/memdisk/boot/grub/grub.cfg"
    (cd "$work/memdisk" && tar --sort=name --mtime="@${SOURCE_DATE_EPOCH:-$(stat -c %Y "$kimg")}" --owner=0 --group=0 \
      --numeric-owner --format=ustar -cf "$work/memdisk.tar" boot)
    # grub-mkimage output is deterministic (fixed PE timestamp)
    grub-mkimage -O arm64-efi -d "$work/grub/usr/lib/grub/arm64-efi" -p '(memdisk)/boot/grub' -m "$work/memdisk.tar" \
      -o "$work/netboot.efi" "${NETBOOT_GRUB_MODULES[@]}"
    chmod 0644 "$work/netboot.efi"
    have_netboot=1
  elif [ "$arch" = arm64 ]; then
    log "arm64: no netboot.efi (network boot of arm64 nodes): $netboot_note"
  fi
  chmod 0644 "$work/vmlinuz" "$work/initrd.img"

  local vsha isha vsize isize
  vsha=$(sha256sum <"$work/vmlinuz" | cut -d' ' -f1)
  isha=$(sha256sum <"$work/initrd.img" | cut -d' ' -f1)
  vsize=$(stat -c %s "$work/vmlinuz")
  isize=$(stat -c %s "$work/initrd.img")

  {
    printf '{\n'
    printf '  "schema": 1,\n'
    printf '  "key": "%s",\n' "$key"
    printf '  "arch": "%s",\n' "$arch"
    printf '  "kernelRelease": "%s",\n' "$kver"
    printf '  "sourceDateEpoch": %s,\n' "$epoch"
    printf '  "packages": [\n'
    json_pkg "linux-image-$arch" "$arch" "$kmeta_ver" "$(field "linux-image-$arch:$arch" SHA256)"; printf ',\n'
    json_pkg "$kpkg" "$arch" "$kver_deb" "$ksha"; printf ',\n'
    json_pkg busybox-static "$arch" "$bver" "$bsha"
    if [ "$have_netboot" = 1 ]; then printf ',\n'; json_pkg grub-efi-arm64-bin arm64 "$gver" "$gsha"; fi
    printf '\n'
    printf '  ],\n'
    printf '  "inputs": { "init": "%s", "build.sh": "%s" },\n' "$init_sha" "$build_sha"
    printf '  "modules": [%s],\n' "$(printf '"%s",' "${order[@]:0:$nmedia}" | sed 's/,$//')"
    printf '  "netModules": [%s],\n' "$(printf '"%s",' "${order[@]:$nmedia}" | sed 's/,$//')"
    printf '  "outputs": {\n'
    printf '    "vmlinuz": { "size": %s, "sha256": "%s" },\n' "$vsize" "$vsha"
    if [ "$have_vmlinux" = 1 ]; then
      printf '    "vmlinux": { "size": %s, "sha256": "%s", "boot": "pvh" },\n' \
        "$(stat -c %s "$work/vmlinux")" "$(sha256sum <"$work/vmlinux" | cut -d' ' -f1)"
    fi
    if [ "$have_netboot" = 1 ]; then
      printf '    "netboot.efi": { "size": %s, "sha256": "%s", "grubMkimage": "%s" },\n' \
        "$(stat -c %s "$work/netboot.efi")" "$(sha256sum <"$work/netboot.efi" | cut -d' ' -f1)" "$hgver"
    fi
    printf '    "initrd.img": { "size": %s, "sha256": "%s" }\n' "$isize" "$isha"
    printf '  }\n}\n'
  } >"$work/manifest.json"

  mkdir -p "$dest"
  # manifest last: its presence with the right key marks a complete build
  rm -f "$dest/manifest.json"
  mv -f "$work/vmlinuz" "$dest/vmlinuz"
  mv -f "$work/initrd.img" "$dest/initrd.img"
  if [ "$have_vmlinux" = 1 ]; then mv -f "$work/vmlinux" "$dest/vmlinux"; else rm -f "$dest/vmlinux"; fi
  if [ "$have_netboot" = 1 ]; then mv -f "$work/netboot.efi" "$dest/netboot.efi"; else rm -f "$dest/netboot.efi"; fi
  mv -f "$work/manifest.json" "$dest/manifest.json"
  log "$arch: built $kpkg $kver_deb + busybox-static $bver in $((SECONDS - t0))s" \
    "(vmlinuz $vsize bytes, initrd $isize bytes, ${#order[@]} modules)"
}

for a in "${arches[@]}"; do build_arch "$a"; done
