#!/usr/bin/env bash
# Build the edgeimg reference NoCloud client: a small Debian 12 (bookworm) amd64 guest with the
# real cloud-init from Debian packages, made with mmdebstrap.
#
#   images/cloudinit/build.sh [--out DIR] [--force]
#
# The packages come from the host's apt sources (/etc/apt/sources.list{,.d}). Versions are
# resolved first with a private apt state (nothing is installed on the host) and the .debs are
# kept under the cache, so a rebuild needs no downloads. Output, in <out>/amd64/:
#
#   vmlinuz        Debian's kernel (bzImage) and vmlinux, its ELF payload (PVH boot, faster)
#   initrd.img     initramfs-tools initrd (MODULES=list: root disk and seed media drivers)
#   rootfs.img     ext2 root filesystem (boot it read-only or as a snapshot: it is never changed)
#   manifest.json  package names, versions and sha256s; input and output hashes; the cache key
#
# The cache key is the resolved package set (name, architecture, version) plus the sha256 of
# this script and of every file under images/cloudinit/guest/. When it matches, the build is a
# no-op. The build is reproducible (SOURCE_DATE_EPOCH; default: the kernel image's mtime in the
# kernel .deb): the same package versions and recipe give the same files. Building needs root
# (mmdebstrap --mode=root), mmdebstrap, genext2fs and xz-utils; a missing tool exits with 3.
set -euo pipefail
umask 022
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="$repo/images/cache/cloudinit"
force=0
suite=bookworm
arch=amd64

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

need_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || {
      echo "build.sh: required tool not found: $tool (apt-get install mmdebstrap genext2fs xz-utils)" >&2
      exit 3
    }
  done
}
# enough to tell whether the cached image is up to date
need_tools apt-get apt-cache sha256sum flock find sort awk sed

mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "cloudinit-image: $*" >&2; }
cleanup_dirs=()
cleanup() { local d; for d in "${cleanup_dirs[@]}"; do rm -rf "$d"; done; }
trap cleanup EXIT

# One build at a time per cache directory (parallel test workers may all ask for it).
exec 9>"$out/.lock"
flock 9

# What goes into the guest. Recommends are not installed (mmdebstrap's default).
INCLUDE=(
  linux-image-amd64 initramfs-tools     # kernel + initrd; the seed drivers are modules of this kernel
  systemd-sysv udev dbus                # init, device manager (cloud-init reads labels via blkid/udev)
  systemd-resolved                      # applies the DNS servers networkd gets from netplan
  cloud-init netplan.io                 # the client itself; cloud-init renders network config for netplan
  iproute2 kmod util-linux procps       # ip, modprobe, blkid/mount, sysctl
  e2fsprogs                             # resize2fs: cloud-init's resizefs module runs it on /
  openssh-server                        # as on Debian's cloud images: cloud-init's ssh modules expect it
)
set -f # the path patterns below are for dpkg, not for this shell
# Left out of the root filesystem: documentation, translations, and the kernel modules for
# hardware and features this QEMU machine does not have (~250 MB of the kernel package).
EXCLUDE=(
  /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/lintian/*
  /usr/share/bash-completion/* /usr/share/zsh/*
  /lib/modules/*/kernel/drivers/* /lib/modules/*/kernel/sound/* /lib/modules/*/kernel/net/*
  /lib/modules/*/kernel/fs/* /lib/modules/*/kernel/arch/x86/kvm/*
)
# ... but keep what the guest needs from the directories excluded above: the q35 AHCI CD-ROM
# (ahci, libata, sr_mod, cdrom), qemu-xhci USB storage (xhci, usbcore, usb-storage, uas, sd_mod),
# virtio (blk, net, rng, console), and the filesystems of the root disk and of the seeds.
INCLUDE_PATHS=(
  /usr/share/locale/locale.alias
  /lib/modules/*/kernel/drivers/ata/* /lib/modules/*/kernel/drivers/block/* /lib/modules/*/kernel/drivers/cdrom/*
  /lib/modules/*/kernel/drivers/scsi/scsi_mod.ko /lib/modules/*/kernel/drivers/scsi/scsi_common.ko
  /lib/modules/*/kernel/drivers/scsi/sd_mod.ko /lib/modules/*/kernel/drivers/scsi/sr_mod.ko
  /lib/modules/*/kernel/drivers/scsi/sg.ko /lib/modules/*/kernel/drivers/scsi/virtio_scsi.ko
  /lib/modules/*/kernel/drivers/usb/core/* /lib/modules/*/kernel/drivers/usb/common/*
  /lib/modules/*/kernel/drivers/usb/host/* /lib/modules/*/kernel/drivers/usb/storage/*
  /lib/modules/*/kernel/drivers/virtio/* /lib/modules/*/kernel/drivers/char/hw_random/*
  /lib/modules/*/kernel/drivers/char/virtio_console.ko /lib/modules/*/kernel/drivers/firmware/*
  /lib/modules/*/kernel/drivers/net/virtio_net.ko /lib/modules/*/kernel/drivers/net/net_failover.ko
  /lib/modules/*/kernel/net/core/*
  /lib/modules/*/kernel/fs/isofs/* /lib/modules/*/kernel/fs/fat/* /lib/modules/*/kernel/fs/nls/*
  /lib/modules/*/kernel/fs/ext4/* /lib/modules/*/kernel/fs/jbd2/* /lib/modules/*/kernel/fs/mbcache.ko
)
# Units that cost boot time and do nothing for the client. serial-getty would print a login
# prompt into the report; systemd-firstboot would prompt on the console (machine-id is empty).
MASK=(
  serial-getty@ttyS0.service getty@tty1.service getty-static.service systemd-firstboot.service
  e2scrub_all.timer e2scrub_reap.service fstrim.timer apt-daily.timer apt-daily-upgrade.timer
  dpkg-db-backup.timer systemd-tmpfiles-clean.timer systemd-pstore.service
  systemd-journal-flush.service ldconfig.service man-db.timer
)
set +f

# ---------------------------------------------------------------------------------------------
# Private apt state (resolution only; the host's apt configuration is not touched)
# ---------------------------------------------------------------------------------------------
aptdir="$out/apt"
debs="$out/debs"
mkdir -p "$aptdir/lists/partial" "$aptdir/archives/partial" "$debs"
: >"$aptdir/status"
sourceparts=/etc/apt/sources.list.d
sourcelist=/etc/apt/sources.list
[ -f "$sourcelist" ] || sourcelist=/dev/null
APT_OPTS=(
  -o "Dir::State::Lists=$aptdir/lists"
  -o "Dir::State::status=$aptdir/status"
  -o "Dir::Cache=$aptdir"
  -o "Dir::Cache::archives=$aptdir/archives"
  -o "Dir::Cache::pkgcache="       # no binary caches: they would outlive option changes
  -o "Dir::Cache::srcpkgcache="
  -o "Dir::Etc::SourceParts=$sourceparts"
  -o "Dir::Etc::sourcelist=$sourcelist"
  -o "APT::Architecture=$arch"
  -o "APT::Architectures::=$arch"
  -o "APT::Install-Recommends=false"
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

# The package set mmdebstrap installs, resolved the way it does (mmdebstrap 1.3.5, variant
# essential): first '?narrow(<suite>,<arch>,?essential)' with pkgCacheGen::ForceEssential=","
# (so apt is not pulled in as pseudo-essential), then the --include packages with apt on top of
# that installed set. Lines: "name arch version", sorted.
sim_inst() { # reads apt-get -s output, prints "name arch version"
  sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([^]]*\)\]).*$/\1 \3 \2/p'
}
ess_pattern="?narrow(?or(?archive(^$suite\$),?codename(^$suite\$)),?architecture($arch),?essential)"
if ! essential_set=$(apt-get "${APT_OPTS[@]}" -o 'pkgCacheGen::ForceEssential=,' -s install "$ess_pattern" 2>"$aptdir/resolve.err" | sim_inst | sort); then
  cat "$aptdir/resolve.err" >&2
  echo "build.sh: cannot resolve the essential package set" >&2
  exit 3
fi
[ -n "$essential_set" ] || { echo "build.sh: empty essential package set (apt-get -s output not understood)" >&2; exit 3; }
# a dpkg status file with the essential set installed, for the second step (one stanza per
# package: apt-cache show NAME:ARCH=VERSION prints exactly that version's record)
apt-cache "${APT_OPTS[@]}" show $(awk '{ print $1 ":" $2 "=" $3 }' <<<"$essential_set") 2>/dev/null |
  sed '/^Package: /a Status: install ok installed' >"$aptdir/status.essential"
[ "$(grep -c '^Package: ' "$aptdir/status.essential")" = "$(wc -l <<<"$essential_set")" ] ||
  { echo "build.sh: could not read the records of the essential package set" >&2; exit 3; }
if ! include_set=$(apt-get "${APT_OPTS[@]}" -o "Dir::State::status=$aptdir/status.essential" -o 'pkgCacheGen::ForceEssential=,' \
  -s install "${INCLUDE[@]}" 2>"$aptdir/resolve.err" | sim_inst | sort); then
  cat "$aptdir/resolve.err" >&2
  echo "build.sh: cannot resolve the package set" >&2
  exit 3
fi
pkgset=$(printf '%s\n%s\n' "$essential_set" "$include_set" | sed '/^$/d' | sort -u)
kmeta_ver=$(printf '%s\n' "$pkgset" | awk '$1 == "linux-image-amd64" { print $3 }')
kpkg=$(printf '%s\n' "$pkgset" | awk '$1 ~ /^linux-image-[0-9].*-amd64$/ { print $1 }' | head -n1)
[ -n "$kpkg" ] && [ -n "$kmeta_ver" ] || { echo "build.sh: linux-image-amd64 did not resolve to a kernel package" >&2; exit 3; }

recipe_files=$(cd "$here" && { echo build.sh; find guest -type f; } | sort)
recipe=$(cd "$here" && for f in $recipe_files; do printf '%s %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"; done)
key=$(printf '%s\n' "suite=$suite arch=$arch" "$pkgset" "$recipe" | sha256sum | cut -d' ' -f1)

dest="$out/$arch"
if [ "$force" = 0 ] && [ -f "$dest/manifest.json" ] && [ -f "$dest/rootfs.img" ] && [ -f "$dest/vmlinuz" ] &&
  [ -f "$dest/initrd.img" ] && grep -q "\"key\": \"$key\"" "$dest/manifest.json"; then
  log "up to date ($kpkg, cloud-init $(printf '%s\n' "$pkgset" | awk '$1 == "cloud-init" { print $3 }'), key ${key:0:12})"
  exit 0
fi
t0=$SECONDS
# building needs more
need_tools mmdebstrap genext2fs dpkg dpkg-deb tar od dd xz gzip setsid
[ "$(id -u)" = 0 ] || { echo "build.sh: building the image needs root (mmdebstrap --mode=root)" >&2; exit 3; }

# ---------------------------------------------------------------------------------------------
# Download (or reuse) every .deb, verified against the sha256 in the package lists
# ---------------------------------------------------------------------------------------------
deb_name() { # name version arch -> file name as apt stores it (epoch colon as %3a)
  printf '%s_%s_%s.deb' "$1" "${2//:/%3a}" "$3"
}
declare -A pkgsha=()
shas=$(apt-cache "${APT_OPTS[@]}" show $(printf '%s\n' "$pkgset" | awk '{ print $1 ":" $2 "=" $3 }') 2>/dev/null |
  awk '/^Package: /{p=$2} /^Architecture: /{a=$2} /^Version: /{v=$2} /^SHA256: /{print p, a, v, $2}')
while read -r n a v s; do pkgsha["$n $a $v"]=$s; done <<<"$shas"
missing=()
while read -r n a v; do
  s=${pkgsha["$n $a $v"]:-}
  [ -n "$s" ] || { echo "build.sh: no sha256 for $n $a $v in the package lists" >&2; exit 3; }
  f="$debs/$(deb_name "$n" "$v" "$a")"
  if [ ! -f "$f" ] || [ "$(sha256sum <"$f" | cut -d' ' -f1)" != "$s" ]; then
    rm -f "$f"
    missing+=("$n:$a=$v")
  fi
done <<<"$pkgset"
if [ ${#missing[@]} -gt 0 ]; then
  log "downloading ${#missing[@]} packages"
  tmpd=$(mktemp -d "$debs/.dl.XXXXXX")
  cleanup_dirs+=("$tmpd")
  (cd "$tmpd" && apt-get "${APT_OPTS[@]}" -qq download "${missing[@]}" >/dev/null) ||
    { echo "build.sh: apt-get download failed" >&2; exit 3; }
  mv -f "$tmpd"/*.deb "$debs/"
fi
while read -r n a v; do
  f="$debs/$(deb_name "$n" "$v" "$a")"
  [ -f "$f" ] && [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "${pkgsha["$n $a $v"]}" ] ||
    { echo "build.sh: $f missing or its sha256 does not match the package lists" >&2; exit 3; }
done <<<"$pkgset"
# only the resolved set goes into the chroot's apt cache (older versions may linger in $debs)
work=$(mktemp -d "$out/.build.XXXXXX")
cleanup_dirs+=("$work")
mkdir -p "$work/debs" "$work/boot" "$work/info"
while read -r n a v; do ln "$debs/$(deb_name "$n" "$v" "$a")" "$work/debs/"; done <<<"$pkgset"

# ---------------------------------------------------------------------------------------------
# SOURCE_DATE_EPOCH: the kernel image's mtime in the kernel .deb, unless given
# ---------------------------------------------------------------------------------------------
kver_deb=$(printf '%s\n' "$pkgset" | awk -v k="$kpkg" '$1 == k { print $3 }')
kdeb="$work/debs/$(deb_name "$kpkg" "$kver_deb" amd64)"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(dpkg-deb --fsys-tarfile "$kdeb" | tar -t -v --full-time 2>/dev/null |
    awk '$6 ~ /^\.\/boot\/vmlinuz-/ { print $4 "T" $5 }' | head -n1 | xargs -I{} date -u -d {} +%s)
  [ -n "$SOURCE_DATE_EPOCH" ] || { echo "build.sh: cannot read the kernel image's mtime from $kdeb" >&2; exit 3; }
fi
export SOURCE_DATE_EPOCH

# ---------------------------------------------------------------------------------------------
# mmdebstrap
# ---------------------------------------------------------------------------------------------
mirrors=()
[ -s /etc/apt/sources.list ] && mirrors+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && mirrors+=("$f")
done
[ ${#mirrors[@]} -gt 0 ] || { echo "build.sh: no apt sources on the host" >&2; exit 3; }

dpkgopts=()
for p in "${EXCLUDE[@]}"; do dpkgopts+=(--dpkgopt="path-exclude=$p"); done
for p in "${INCLUDE_PATHS[@]}"; do dpkgopts+=(--dpkgopt="path-include=$p"); done

g="$here/guest"
masks=$(printf '%s ' "${MASK[@]}")
log "running mmdebstrap ($suite, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
# mmdebstrap tears down its whole process group with SIGHUP when it fails: give it a session
# of its own (and pass Ctrl-C on to it).
setsid mmdebstrap --mode=root --variant=essential --architectures="$arch" --format=ext2 \
  --include="$(IFS=,; echo "${INCLUDE[*]}")" \
  "${dpkgopts[@]}" \
  --skip=essential/unlink \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in '$work/debs' /var/cache/apt/archives/" \
  --setup-hook="mkdir -p \"\$1\"/etc/initramfs-tools/conf.d \"\$1\"/etc/initramfs-tools/hooks \"\$1\"/etc/initramfs-tools/scripts/init-premount" \
  --setup-hook="install -m 0644 '$g/initramfs-edgeimg.conf' \"\$1\"/etc/initramfs-tools/conf.d/edgeimg.conf" \
  --setup-hook="install -m 0755 '$g/initramfs-modules' \"\$1\"/etc/initramfs-tools/hooks/edgeimg-modules" \
  --setup-hook="install -m 0755 '$g/initramfs-wait-seed' \"\$1\"/etc/initramfs-tools/scripts/init-premount/edgeimg-wait-seed" \
  --customize-hook="install -m 0755 '$g/edgeimg-cloudinit-report' \"\$1\"/usr/local/sbin/edgeimg-cloudinit-report" \
  --customize-hook="install -m 0644 '$g/edgeimg-cloudinit-report.service' \"\$1\"/etc/systemd/system/edgeimg-cloudinit-report.service" \
  --customize-hook="install -m 0644 '$g/cloud-cfg-edgeimg.cfg' \"\$1\"/etc/cloud/cloud.cfg.d/90-edgeimg-client.cfg" \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook="mkdir -p \"\$1\"/etc/systemd/journald.conf.d \"\$1\"/etc/systemd/system/systemd-networkd-wait-online.service.d" \
  --customize-hook="install -m 0644 '$g/journald-edgeimg.conf' \"\$1\"/etc/systemd/journald.conf.d/edgeimg.conf" \
  --customize-hook="install -m 0644 '$g/wait-online-edgeimg.conf' \"\$1\"/etc/systemd/system/systemd-networkd-wait-online.service.d/edgeimg.conf" \
  --customize-hook='chroot "$1" systemctl enable edgeimg-cloudinit-report.service systemd-networkd.service systemd-resolved.service' \
  --customize-hook="chroot \"\$1\" systemctl mask $masks" \
  --customize-hook='echo "en_US.UTF-8 UTF-8" > "$1"/etc/locale.gen && chroot "$1" locale-gen >/dev/null' \
  --customize-hook='printf "LANG=en_US.UTF-8\n" > "$1"/etc/default/locale' \
  --customize-hook='echo edgeimg-nocloud-client > "$1"/etc/hostname' \
  --customize-hook='printf "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n" > "$1"/etc/hosts' \
  --customize-hook='ln -sfn ../run/systemd/resolve/stub-resolv.conf "$1"/etc/resolv.conf' \
  --customize-hook='printf "/dev/vda\t/\text4\trw,noatime\t0\t0\n" > "$1"/etc/fstab' \
  --customize-hook="sync-out /boot '$work/boot'" \
  --customize-hook="chroot \"\$1\" dpkg-query -W -f '\${Package} \${Architecture} \${Version}\n' > '$work/info/installed'" \
  --customize-hook='rm -f "$1"/boot/vmlinuz-* "$1"/boot/initrd.img-* "$1"/boot/System.map-* "$1"/vmlinuz* "$1"/initrd.img*' \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old' \
  "$suite" "$work/rootfs.img" "${mirrors[@]}" </dev/null >"$work/mmdebstrap.log" 2>&1 &
mm_pid=$!
trap 'kill -TERM -- "-$mm_pid" 2>/dev/null; wait "$mm_pid"; exit 130' INT TERM
mm_rc=0
wait "$mm_pid" || mm_rc=$?
trap - INT TERM
if [ "$mm_rc" != 0 ]; then
  tail -n 40 "$work/mmdebstrap.log" >&2
  echo "build.sh: mmdebstrap failed (exit $mm_rc; log above)" >&2
  exit 1
fi

# What was installed must be what was resolved (the key describes it).
installed=$(sort "$work/info/installed")
if [ "$installed" != "$pkgset" ]; then
  diff <(printf '%s\n' "$pkgset") <(printf '%s\n' "$installed") >&2 || true
  echo "build.sh: the installed package set differs from the resolved one (archive changed during the build?); run again" >&2
  exit 1
fi

# ---------------------------------------------------------------------------------------------
# Kernel: bzImage as shipped, plus its ELF payload for a PVH boot (skips in-guest decompression,
# several seconds under TCG; see images/probe/build.sh).
# ---------------------------------------------------------------------------------------------
extract_vmlinux() { # BZIMAGE OUT
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
}
kver=$(cd "$work/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | head -n1)
[ -n "$kver" ] && [ -f "$work/boot/initrd.img-$kver" ] || { echo "build.sh: no kernel/initrd in the chroot's /boot" >&2; exit 1; }
cp "$work/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$work/boot/initrd.img-$kver" "$work/initrd.img"
have_vmlinux=0
if grep -q '^CONFIG_PVH=y' "$work/boot/config-$kver" 2>/dev/null && extract_vmlinux "$work/vmlinuz" "$work/vmlinux"; then
  have_vmlinux=1
fi
chmod 0644 "$work/vmlinuz" "$work/initrd.img" "$work/rootfs.img"
[ "$have_vmlinux" = 1 ] && chmod 0644 "$work/vmlinux"
touch -d "@$SOURCE_DATE_EPOCH" "$work/vmlinuz" "$work/initrd.img" "$work/rootfs.img"

# ---------------------------------------------------------------------------------------------
# manifest.json (written last: its presence with the right key marks a complete build)
# ---------------------------------------------------------------------------------------------
fileinfo() { printf '{ "size": %s, "sha256": "%s" }' "$(stat -c %s "$1")" "$(sha256sum <"$1" | cut -d' ' -f1)"; }
{
  printf '{\n'
  printf '  "schema": 1,\n'
  printf '  "key": "%s",\n' "$key"
  printf '  "suite": "%s",\n' "$suite"
  printf '  "arch": "%s",\n' "$arch"
  printf '  "kernelRelease": "%s",\n' "$kver"
  printf '  "sourceDateEpoch": %s,\n' "$SOURCE_DATE_EPOCH"
  printf '  "include": [%s],\n' "$(printf '"%s",' "${INCLUDE[@]}" | sed 's/,$//')"
  printf '  "packages": [\n'
  first=1
  while read -r n a v; do
    [ "$first" = 1 ] || printf ',\n'
    first=0
    printf '    { "name": "%s", "architecture": "%s", "version": "%s", "sha256": "%s" }' "$n" "$a" "$v" "${pkgsha["$n $a $v"]}"
  done <<<"$pkgset"
  printf '\n  ],\n'
  printf '  "inputs": {\n'
  first=1
  while read -r s f; do
    [ "$first" = 1 ] || printf ',\n'
    first=0
    printf '    "%s": "%s"' "$f" "$s"
  done <<<"$recipe"
  printf '\n  },\n'
  printf '  "outputs": {\n'
  printf '    "vmlinuz": %s,\n' "$(fileinfo "$work/vmlinuz")"
  if [ "$have_vmlinux" = 1 ]; then
    printf '    "vmlinux": { "size": %s, "sha256": "%s", "boot": "pvh" },\n' \
      "$(stat -c %s "$work/vmlinux")" "$(sha256sum <"$work/vmlinux" | cut -d' ' -f1)"
  fi
  printf '    "initrd.img": %s,\n' "$(fileinfo "$work/initrd.img")"
  printf '    "rootfs.img": %s\n' "$(fileinfo "$work/rootfs.img")"
  printf '  }\n}\n'
} >"$work/manifest.json"

mkdir -p "$dest"
rm -f "$dest/manifest.json"
mv -f "$work/vmlinuz" "$dest/vmlinuz"
if [ "$have_vmlinux" = 1 ]; then mv -f "$work/vmlinux" "$dest/vmlinux"; else rm -f "$dest/vmlinux"; fi
mv -f "$work/initrd.img" "$dest/initrd.img"
mv -f "$work/rootfs.img" "$dest/rootfs.img"
cp "$work/mmdebstrap.log" "$dest/mmdebstrap.log"
mv -f "$work/manifest.json" "$dest/manifest.json"
log "built $kpkg $kmeta_ver, cloud-init $(awk '$1 == "cloud-init" { print $3 }' <<<"$pkgset"), $(wc -l <<<"$pkgset") packages" \
  "in $((SECONDS - t0))s (rootfs $(stat -c %s "$dest/rootfs.img") bytes, initrd $(stat -c %s "$dest/initrd.img") bytes)"
