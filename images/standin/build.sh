#!/usr/bin/env bash
# Build the edgeimg stand-in class boot images: small GRUB boot ISOs that boot through real
# firmware like a Talos or Kairos ISO, then follow that OS's seed discovery (images/probe/init,
# edgeimg.standin=talos|kairos) and print the probe transcript. TEST IMAGES, not Talos or Kairos.
#
#   images/standin/build.sh [--arch amd64|arm64|all] [--out DIR] [--force]
#
# Output, per architecture, in <out>/<arch>/ (default images/cache/standin/<arch>/):
#
#   talos-like.iso   volume id EDGEIMG_TALOS_LIKE, kernel argument edgeimg.standin=talos
#   kairos-like.iso  volume id COS_LIVE (as real Kairos live ISOs), edgeimg.standin=kairos
#   manifest.json    inputs (sha256s, package versions), outputs (sha256, size); written last
#
# Each ISO is made by grub-mkrescue: amd64 hybrid BIOS (i386-pc, El Torito + isohybrid MBR) and
# UEFI (x86_64-efi, ESP image + GPT), dd-able to a USB stick; arm64 UEFI (arm64-efi) only; no
# GRUB fonts, locales or themes, and without grub-mkrescue's Mac HFS+/APM hybrid (see below). It
# holds the probe image's kernel (/boot/vmlinuz) and initramfs (/boot/initrd.img), a
# /boot/grub/grub.cfg that boots at once with a fixed command line, and /EDGEIMG-STANDIN.json.
#
# Nothing is installed on the host. The host's grub-common, grub-pc-bin, grub-efi-amd64-bin,
# xorriso and mtools are used as installed; grub-efi-arm64-bin:arm64 (not installable on amd64)
# and libfaketime are fetched with the probe's private apt state (images/cache/probe/apt) and
# unpacked under the cache. The probe image is (re)built first when missing or older than
# images/probe/init / images/probe/build.sh.
#
# Reproducible: grub-mkrescue stamps the ISO (and the UUID its core images search for) with the
# current time and xorriso writes directory timestamps from the clock, so the build runs under
# libfaketime with the clock frozen at SOURCE_DATE_EPOCH (default: the probe kernel's mtime) and
# with SOURCE_DATE_EPOCH set (xorriso honours it). Two builds give identical bytes. Without
# libfaketime the build still works, but is not reproducible (the manifest says so).
#
# Cache key: probe kernel + initrd sha256, the GRUB/xorriso/mtools versions, the arm64 GRUB and
# libfaketime .deb sha256s, SOURCE_DATE_EPOCH and this script's sha256. When manifest.json
# carries the same key and both ISOs are there, the build is a no-op.
set -euo pipefail
umask 022
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="$repo/images/cache/standin"
probe_cache="$repo/images/cache/probe"
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
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

for tool in grub-mkrescue grub-mkimage xorriso mformat mcopy apt-get apt-cache dpkg dpkg-deb dpkg-query sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build.sh: required tool not found: $tool (apt-get install grub-common xorriso mtools)" >&2; exit 3; }
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "standin-images: $*" >&2; }
cleanup_dirs=()
cleanup() { local d; for d in "${cleanup_dirs[@]}"; do rm -rf "$d"; done; }
trap cleanup EXIT

exec 9>"$out/.lock"
flock 9

sha() { sha256sum <"$1" | cut -d' ' -f1; }
hostver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# ---------------------------------------------------------------------------------------------
# The probe image (kernel + initramfs with the stand-in modes), rebuilt when stale.
# ---------------------------------------------------------------------------------------------
probe_fresh() { # arch
  local m="$probe_cache/$1/manifest.json"
  [ -f "$m" ] && [ -f "$probe_cache/$1/vmlinuz" ] && [ -f "$probe_cache/$1/initrd.img" ] &&
    grep -q "\"init\": \"$(sha "$repo/images/probe/init")\"" "$m" &&
    grep -q "\"build.sh\": \"$(sha "$repo/images/probe/build.sh")\"" "$m"
}
stale=()
for a in "${arches[@]}"; do probe_fresh "$a" || stale+=("$a"); done
if [ ${#stale[@]} -gt 0 ]; then
  log "probe image missing or stale for ${stale[*]}: building it (images/probe/build.sh)"
  if [ ${#stale[@]} -eq 1 ]; then bash "$repo/images/probe/build.sh" --arch "${stale[0]}"; else bash "$repo/images/probe/build.sh"; fi
  for a in "${stale[@]}"; do probe_fresh "$a" || { echo "build.sh: no up-to-date $a probe image after building it" >&2; exit 3; }; done
fi

# ---------------------------------------------------------------------------------------------
# Debian packages not installed on the host, via the probe's private apt state.
# ---------------------------------------------------------------------------------------------
aptdir="$probe_cache/apt"
mkdir -p "$aptdir/lists/partial" "$aptdir/archives/partial" "$aptdir/debs"
[ -f "$aptdir/status" ] || : >"$aptdir/status"
sourcelist=/etc/apt/sources.list
[ -f "$sourcelist" ] || sourcelist=/dev/null
APT_OPTS=(
  -o "Dir::State::Lists=$aptdir/lists"
  -o "Dir::State::status=$aptdir/status"
  -o "Dir::Cache=$aptdir"
  -o "Dir::Cache::archives=$aptdir/archives"
  -o "Dir::Cache::pkgcache=pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=srcpkgcache.bin"
  -o "Dir::Etc::SourceParts=/etc/apt/sources.list.d"
  -o "Dir::Etc::sourcelist=$sourcelist"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures::=amd64"
  -o "APT::Architectures::=arm64"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
)
hostarch=$(dpkg --print-architecture)

declare -A stanzas=()
updated=0
load() { # PKG:ARCH -> caches its candidate record; refreshes the lists once if it is unknown
  [ -n "${stanzas[$1]:-}" ] && return 0
  stanzas[$1]=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null || true)
  if [ -z "${stanzas[$1]}" ] && [ "$updated" = 0 ]; then
    log "updating the probe's private package lists ($aptdir)"
    apt-get "${APT_OPTS[@]}" -qq update >"$aptdir/update-standin.log" 2>&1 || log "warning: apt-get update failed (see $aptdir/update-standin.log)"
    updated=1
    stanzas[$1]=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null || true)
  fi
  [ -n "${stanzas[$1]}" ]
}
field() { printf '%s\n' "${stanzas[$1]:-}" | sed -n "s/^$2: //p" | head -n1; }

# fetch PKG ARCH DIR: download (unless cached, sha256-checked) and unpack into DIR; prints the deb
fetch_unpack() {
  local pkg=$1 arch=$2 dir=$3 version want deb tmpd
  version=$(field "$pkg:$arch" Version)
  want=$(field "$pkg:$arch" SHA256)
  deb="$aptdir/debs/${pkg}_${version#*:}_${arch}.deb"
  if [ ! -f "$deb" ] || [ "$(sha "$deb")" != "$want" ]; then
    log "downloading $pkg:$arch $version"
    rm -f "$deb"
    tmpd=$(mktemp -d "$aptdir/debs/.dl.XXXXXX")
    (cd "$tmpd" && apt-get "${APT_OPTS[@]}" -qq download "$pkg:$arch=$version" >/dev/null)
    mv -f "$tmpd"/*.deb "$deb" 2>/dev/null || true
    rm -rf "$tmpd"
    [ -f "$deb" ] && [ "$(sha "$deb")" = "$want" ] || { echo "build.sh: download of $pkg:$arch failed or sha256 mismatch" >&2; return 1; }
  fi
  if [ ! -f "$dir/.unpacked" ] || [ "$(cat "$dir/.unpacked")" != "$want" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    dpkg-deb -x "$deb" "$dir"
    echo "$want" >"$dir/.unpacked"
  fi
  echo "$deb"
}

# one process at a time in the shared apt state (the probe's build takes the same lock)
exec 8>"$probe_cache/.lock"
flock 8

faketime_lib=
faketime_pkg=
if load "libfaketime:$hostarch"; then
  ft_dir="$out/tools/libfaketime-$hostarch"
  if fetch_unpack libfaketime "$hostarch" "$ft_dir" >/dev/null; then
    faketime_lib=$(find "$ft_dir" -name libfaketime.so.1 | head -n1)
    faketime_pkg="libfaketime $hostarch $(field "libfaketime:$hostarch" Version) $(field "libfaketime:$hostarch" SHA256)"
  fi
fi
[ -n "$faketime_lib" ] || log "warning: libfaketime not available: the ISOs will not be reproducible"

grub_arm64_dir=
grub_arm64_pkg=
for a in "${arches[@]}"; do
  [ "$a" = arm64 ] || continue
  load "grub-efi-arm64-bin:arm64" || { echo "build.sh: grub-efi-arm64-bin:arm64 not in the package lists" >&2; exit 3; }
  v=$(field "grub-efi-arm64-bin:arm64" Version)
  hv=$(hostver grub-common)
  [ "$v" = "$hv" ] || log "warning: grub-efi-arm64-bin $v differs from the host's grub-common $hv (grub-mkimage)"
  gdir="$out/tools/grub-efi-arm64-bin"
  fetch_unpack grub-efi-arm64-bin arm64 "$gdir" >/dev/null || exit 3
  grub_arm64_dir="$gdir/usr/lib/grub/arm64-efi"
  [ -f "$grub_arm64_dir/moddep.lst" ] || { echo "build.sh: no arm64-efi modules in grub-efi-arm64-bin" >&2; exit 3; }
  grub_arm64_pkg="grub-efi-arm64-bin arm64 $v $(field "grub-efi-arm64-bin:arm64" SHA256)"
done
flock -u 8
exec 8>&-

# ---------------------------------------------------------------------------------------------
# The ISOs
# ---------------------------------------------------------------------------------------------
NOTE="test stand-in built from Debian packages; not Talos/Kairos"

volid_of() { [ "$1" = talos ] && echo EDGEIMG_TALOS_LIKE || echo COS_LIVE; }

grub_cfg() { # arch mode
  local arch=$1 mode=$2 volid console
  volid=$(volid_of "$mode")
  if [ "$arch" = amd64 ]; then console=ttyS0; else console=ttyAMA0; fi
  cat <<EOF
# edgeimg stand-in class boot image ($mode-like, $arch): $NOTE.
# Boots at once, no menu; the kernel reads its nonce and media count from QEMU fw_cfg.
set timeout=0
set timeout_style=hidden
set default=0
EOF
  if [ "$arch" = amd64 ]; then
    cat <<'EOF'
if [ "$grub_platform" = "pc" ]; then
  # SeaBIOS: the VGA console is not captured; GRUB talks on the first serial port
  serial --unit=0 --speed=115200
  terminal_input serial console
  terminal_output serial console
else
  # UEFI: OVMF's console already goes to the serial port as well
  terminal_output console
fi
EOF
  else
    echo "terminal_output console"
  fi
  cat <<EOF
menuentry "edgeimg $mode-like stand-in ($arch)" {
  linux /boot/vmlinuz console=$console quiet panic=-1 cryptomgr.notests edgeimg.standin=$mode edgeimg.live=$volid edgeimg.wait=30
  initrd /boot/initrd.img
}
EOF
}

json_pkg() { # "name arch version [sha256]"
  # shellcheck disable=SC2086
  set -- $1
  if [ -n "${4:-}" ]; then
    printf '      { "name": "%s", "architecture": "%s", "version": "%s", "sha256": "%s" }' "$1" "$2" "$3" "$4"
  else
    printf '      { "name": "%s", "architecture": "%s", "version": "%s", "installed": true }' "$1" "$2" "$3"
  fi
}

build_arch() {
  local arch=$1 dest="$out/$1" pm="$probe_cache/$1/manifest.json"
  local work
  work=$(mktemp -d "$out/.build-$arch.XXXXXX")
  cleanup_dirs+=("$work")
  # copies first: a concurrent probe rebuild cannot change what is hashed and packed
  cp "$probe_cache/$arch/vmlinuz" "$work/vmlinuz"
  cp "$probe_cache/$arch/initrd.img" "$work/initrd.img"
  local vsha isha probe_key epoch
  vsha=$(sha "$work/vmlinuz")
  isha=$(sha "$work/initrd.img")
  probe_key=$(sed -n 's/^  "key": "\(.*\)",$/\1/p' "$pm")
  epoch=${SOURCE_DATE_EPOCH:-$(sed -n 's/^  "sourceDateEpoch": \([0-9]*\),$/\1/p' "$pm")}
  [ -n "$epoch" ] || epoch=$(stat -c %Y "$work/vmlinuz")
  case "$epoch" in ''|*[!0-9]*) echo "build.sh: SOURCE_DATE_EPOCH must be a whole number of seconds" >&2; exit 2 ;; esac

  local -a pkgs=("grub-common $hostarch $(hostver grub-common)" "xorriso $hostarch $(hostver xorriso)" "mtools $hostarch $(hostver mtools)")
  local -a platdirs=()
  if [ "$arch" = amd64 ]; then
    pkgs+=("grub-pc-bin $hostarch $(hostver grub-pc-bin)" "grub-efi-amd64-bin $hostarch $(hostver grub-efi-amd64-bin)")
    local p
    for p in i386-pc x86_64-efi; do
      [ -f "/usr/lib/grub/$p/moddep.lst" ] || { echo "build.sh: /usr/lib/grub/$p missing (apt-get install grub-pc-bin grub-efi-amd64-bin)" >&2; exit 3; }
    done
    # grub-mkrescue packs every platform under /usr/lib/grub; say so when there are more
    for p in /usr/lib/grub/*/moddep.lst; do platdirs+=("$(basename "$(dirname "$p")")"); done
    [ "${platdirs[*]}" = "i386-pc x86_64-efi" ] || log "warning: grub-mkrescue will also pack: ${platdirs[*]}"
  else
    pkgs+=("$grub_arm64_pkg")
    platdirs=(arm64-efi)
  fi
  [ -n "$faketime_pkg" ] && pkgs+=("$faketime_pkg")
  local build_sha key
  build_sha=$(sha "$here/build.sh")
  key=$(printf '%s\n' "$arch" "vmlinuz=$vsha" "initrd=$isha" "epoch=$epoch" "build=$build_sha" "platforms=${platdirs[*]}" "${pkgs[@]}" | sha256sum | cut -d' ' -f1)

  if [ "$force" = 0 ] && [ -f "$dest/manifest.json" ] && [ -f "$dest/talos-like.iso" ] && [ -f "$dest/kairos-like.iso" ] &&
    grep -q "\"key\": \"$key\"" "$dest/manifest.json"; then
    log "$arch: up to date"
    return 0
  fi

  local t0=$SECONDS mode kind volid tree iso
  local -a run_env=(env "SOURCE_DATE_EPOCH=$epoch" TZ=UTC)
  if [ -n "$faketime_lib" ]; then
    # frozen clock ("YYYY-MM-DD hh:mm:ss" without @): every time() in grub-mkrescue, mformat and
    # xorriso returns SOURCE_DATE_EPOCH
    run_env+=("LD_PRELOAD=$faketime_lib" "FAKETIME=$(date -u -d "@$epoch" '+%Y-%m-%d %H:%M:%S')" FAKETIME_DONT_FAKE_MONOTONIC=1)
  fi
  # xorriso as grub-mkrescue calls it, minus the Mac HFS+/APM hybrid it adds next to x86_64-efi:
  # xorriso 1.5.4 cannot replay that layout ("GPT partitions 1 and 2 overlap") when a Kairos
  # one-stick ISO is made from kairos-like.iso with -boot_image any replay (src/media/onestick.ts)
  {
    printf '#!/usr/bin/env bash\nargs=()\nwhile [ $# -gt 0 ]; do\n  case "$1" in\n'
    printf '    -hfsplus) shift ;;\n    -apm-block-size) shift 2 ;;\n'
    printf '    -hfsplus-file-creator-type) shift 4 ;;\n    -hfs-bless-by) shift 3 ;;\n'
    printf '    *) args+=("$1"); shift ;;\n  esac\ndone\n'
    printf 'exec %q "${args[@]}"\n' "$(command -v xorriso)"
  } >"$work/xorriso"
  chmod 0755 "$work/xorriso"
  local -a mkrescue=(grub-mkrescue "--xorriso=$work/xorriso" --fonts= --locales= --themes=)
  [ "$arch" = arm64 ] && mkrescue+=(-d "$grub_arm64_dir")

  for mode in talos kairos; do
    kind=$mode-like
    volid=$(volid_of "$mode")
    tree="$work/tree-$mode"
    mkdir -p "$tree/boot/grub"
    cp "$work/vmlinuz" "$tree/boot/vmlinuz"
    cp "$work/initrd.img" "$tree/boot/initrd.img"
    grub_cfg "$arch" "$mode" >"$tree/boot/grub/grub.cfg"
    printf '{"standin":"%s","arch":"%s","version":1,"note":"%s"}\n' "$kind" "$arch" "$NOTE" >"$tree/EDGEIMG-STANDIN.json"
    chmod -R u=rwX,go=rX "$tree"
    find "$tree" -exec touch -h -d "@$epoch" {} +
    iso="$work/$kind.iso"
    if ! "${run_env[@]}" TMPDIR="$work" "${mkrescue[@]}" -o "$iso" "$tree" -V "$volid" >"$work/$kind.log" 2>&1; then
      cat "$work/$kind.log" >&2
      echo "build.sh: grub-mkrescue failed for $arch $kind" >&2
      exit 3
    fi
    [ "$(dd if="$iso" bs=1 skip=$((32768 + 40)) count=32 2>/dev/null | sed 's/ *$//')" = "$volid" ] ||
      { echo "build.sh: $iso does not carry volume id $volid" >&2; exit 3; }
    chmod 0644 "$iso"
  done

  local repro=false
  [ -n "$faketime_lib" ] && repro=true
  {
    printf '{\n'
    printf '  "schema": 1,\n'
    printf '  "key": "%s",\n' "$key"
    printf '  "arch": "%s",\n' "$arch"
    printf '  "note": "%s",\n' "$NOTE"
    printf '  "sourceDateEpoch": %s,\n' "$epoch"
    printf '  "reproducible": %s,\n' "$repro"
    printf '  "grubPlatforms": [%s],\n' "$(printf '"%s",' "${platdirs[@]}" | sed 's/,$//')"
    printf '  "inputs": {\n'
    printf '    "probe": { "key": "%s", "vmlinuz": "%s", "initrd.img": "%s" },\n' "$probe_key" "$vsha" "$isha"
    printf '    "build.sh": "%s",\n' "$build_sha"
    printf '    "packages": [\n'
    local i
    for i in "${!pkgs[@]}"; do
      json_pkg "${pkgs[$i]}"
      [ "$i" -lt $((${#pkgs[@]} - 1)) ] && printf ',\n' || printf '\n'
    done
    printf '    ]\n'
    printf '  },\n'
    printf '  "outputs": {\n'
    printf '    "talos-like.iso": { "size": %s, "sha256": "%s", "volumeId": "EDGEIMG_TALOS_LIKE" },\n' \
      "$(stat -c %s "$work/talos-like.iso")" "$(sha "$work/talos-like.iso")"
    printf '    "kairos-like.iso": { "size": %s, "sha256": "%s", "volumeId": "COS_LIVE" }\n' \
      "$(stat -c %s "$work/kairos-like.iso")" "$(sha "$work/kairos-like.iso")"
    printf '  }\n}\n'
  } >"$work/manifest.json"

  mkdir -p "$dest"
  rm -f "$dest/manifest.json"
  mv -f "$work/talos-like.iso" "$dest/talos-like.iso"
  mv -f "$work/kairos-like.iso" "$dest/kairos-like.iso"
  mv -f "$work/manifest.json" "$dest/manifest.json"
  log "$arch: built talos-like.iso ($(stat -c %s "$dest/talos-like.iso") bytes) and kairos-like.iso" \
    "($(stat -c %s "$dest/kairos-like.iso") bytes) in $((SECONDS - t0))s${faketime_lib:+, reproducible}"
}

for a in "${arches[@]}"; do build_arch "$a"; done
