#!/usr/bin/env bash
# kernel-matrix.sh — boots Debian's stock kernels in qemu and runs the
# end-to-end smoke test of every tool (scripts/kernel-smoke.sh) inside each,
# with exactly this tree's target/release/prodtrace and target/release/bunyan.
#
#   scripts/kernel-matrix.sh                 Debian 12's 6.1.0-50 and the newest 6.12
#   scripts/kernel-matrix.sh 6.1.0-50-amd64  only the kernels named (Debian versions)
#   scripts/kernel-matrix.sh 5.10.0-32-amd64 Debian 11's kernel, below the 5.15 floor:
#                                            each tool works or refuses in one line
#
# Run as root.  It first runs `scripts/setup.sh --kernel-matrix` (qemu, udev,
# virtme-ng, the release build; quick when done).  Each kernel is the
# Debian package linux-image-VERSION, fetched with `apt-get download` and
# unpacked into $PRODTRACE_CACHE/kernels (default /var/cache/prodtrace),
# never installed.  "6.12" means the newest linux-image-6.12.*+deb12-amd64
# apt offers (Debian 12's security/backports 6.12).  The guest (virtme-ng)
# boots that kernel with its own modules, sees this machine's filesystem
# read-only (its writes go to tmpfs), and writes its results into
# target/kernel-matrix/KERNEL/, which is shared read-write.
#
# One boot per kernel runs every check; the report (also in
# target/kernel-matrix/report.txt) says per kernel what ran and what
# passed.  Exit status: 0 only when every check passed on every kernel.
#
# Environment: KERNEL_MATRIX_PARALLEL=0 boots the kernels one after the
# other (default 1: all at once, which measured a third faster on 2 cores
# under emulation, docs/kernels.md); KERNEL_MATRIX_TIMEOUT=SECS per VM
# (default 3600).
#
# Acceleration: KVM when a hardware KVM module (kvm_intel, kvm_amd) is
# loaded; otherwise (no KVM, or a PVM /dev/kvm, which cannot run stock
# kernels) qemu's software emulation TCG: ~30 s to boot an idle machine,
# minutes on a loaded one, everything 10-50x slower.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
cache=${PRODTRACE_CACHE:-/var/cache/prodtrace}
vng=$cache/virtme-ng/bin/vng          # installed by setup.sh --kernel-matrix
export PATH=$cache/virtme-ng/bin:$PATH   # vng runs virtme-run from there
results=$root/target/kernel-matrix
vm_timeout=${KERNEL_MATRIX_TIMEOUT:-3600}

log() { printf '\033[1mkernel-matrix:\033[0m %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (it fetches kernels and traces processes)"
[ $# -gt 0 ] || set -- 6.1.0-50-amd64 6.12
./scripts/setup.sh --kernel-matrix || die "scripts/setup.sh --kernel-matrix failed"

# apt_update: once per run, when apt's lists lack what we look for.
apt_updated=0
apt_update() {
    [ $apt_updated = 0 ] || return 1
    apt_updated=1
    log "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
}

# newest_612: the newest linux-image-6.12.*+deb12-amd64 apt offers.
newest_612() {
    apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64$' |
        awk '{print $1}' | sed 's/^linux-image-//' | sort -V | tail -n1
}

# resolve VERSION: the full Debian kernel version ("6.12": the newest 6.12).
resolve() {
    case $1 in
    6.12)
        local v
        v=$(newest_612)
        [ -n "$v" ] || { apt_update && v=$(newest_612); }
        [ -n "$v" ] || die "apt offers no linux-image-6.12.*+deb12-amd64"
        echo "$v"
        ;;
    *-amd64) echo "$1" ;;
    *) echo "$1-amd64" ;;
    esac
}

# fetch_archive VERSION DIR: linux-image-VERSION of Debian 11 (bullseye,
# whose 5.10 kernels apt's Debian 12 sources do not list) into DIR, found in
# that release's Packages index on deb.debian.org / security.debian.org and
# checked against the index's SHA256.
fetch_archive() {
    local v=$1 dir=$2 dists entry file sum
    for dists in http://deb.debian.org/debian/dists/bullseye \
        http://security.debian.org/debian-security/dists/bullseye-security; do
        entry=$(curl -fsS "$dists/main/binary-amd64/Packages.xz" | xz -dc |
            awk -v RS= -v p="Package: linux-image-$v" 'index($0, p "\n") == 1 {print; exit}')
        [ -n "$entry" ] || continue
        file=$(sed -n 's/^Filename: //p' <<<"$entry")
        sum=$(sed -n 's/^SHA256: //p' <<<"$entry")
        log "fetching $file from ${dists%/dists/*} (Debian 11)"
        curl -fsS -o "$dir/linux-image-$v.deb" "${dists%/dists/*}/$file" &&
            echo "$sum  $dir/linux-image-$v.deb" | sha256sum -c --quiet && return 0
    done
    return 1
}

# fetch VERSION: the kernel's image and modules in $cache/kernels/VERSION.
fetch() {
    local v=$1 dir=$cache/kernels/$1
    [ -f "$dir/boot/vmlinuz-$v" ] && return
    log "fetching linux-image-$v (apt-get download, unpacked, not installed)"
    mkdir -p "$cache/kernels"
    local tmp
    tmp=$(mktemp -d "$cache/kernels/.fetch.XXXXXX") || die "cannot write $cache/kernels"
    # apt downloads as user _apt: let it write there.
    chmod 755 "$cache" "$cache/kernels" "$tmp" && { ! id _apt >/dev/null 2>&1 || chown _apt "$tmp"; }
    if ! (cd "$tmp" && apt-get download -q "linux-image-$v" >/dev/null); then
        # Stale lists (the package moved on the mirror): update, try again.
        # Not in apt's sources at all: Debian 11's archive (5.10).
        if ! { apt_update && (cd "$tmp" && apt-get download -q "linux-image-$v" >/dev/null); } &&
            ! fetch_archive "$v" "$tmp"; then
            rm -rf "$tmp"
            die "apt-get download linux-image-$v failed"
        fi
    fi
    dpkg-deb -x "$tmp"/linux-image-*.deb "$tmp/root" && [ -f "$tmp/root/boot/vmlinuz-$v" ] ||
        { rm -rf "$tmp"; die "linux-image-$v: no boot/vmlinuz-$v in the package"; }
    # The package's postinst would run depmod; virtme loads modules by alias.
    depmod -a -b "$tmp/root" "$v" || { rm -rf "$tmp"; die "depmod for $v failed"; }
    rm -rf "$dir" && mv "$tmp/root" "$dir" && rm -rf "$tmp"
}

accel=tcg
if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
    accel=kvm
fi

# boot VERSION: runs the smoke test in a VM; its results land in $results/VERSION.
boot() {
    local v=$1 out=$results/$1
    rm -rf "$out" && mkdir -p "$out"
    ./scripts/kernel-smoke.sh --prepare "$out" >"$out/prepare.log" 2>&1 || { log "$v: preparing the C targets failed"; return; }
    # What the guest runs: mounts what virtme leaves out, then the smoke test.
    cat >"$out/guest.sh" <<EOF
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
export PATH=$(printf %q "$PATH") LANG=C.UTF-8 TMPDIR=/tmp
exec $(printf %q "$root/scripts/kernel-smoke.sh") $(printf %q "$out")
EOF
    local args=(--run "$cache/kernels/$v/boot/vmlinuz-$v" --cpus 2 --memory 2G --user root
        --name prodtrace-matrix --cwd "$root" --rwdir "$out" --exec "bash $out/guest.sh")
    [ $accel = kvm ] || args+=(--disable-kvm)
    local start=$SECONDS rc=0
    # qemu reopens a redirected stdout with O_TRUNC: pipe it instead.
    timeout -k 10 "$vm_timeout" "$vng" "${args[@]}" </dev/null 2>&1 | sed -u "s/^/[$v] /" | tee "$out/console.log" >&2
    rc=${PIPESTATUS[0]}
    echo "$rc $((SECONDS - start))" >"$out/vm.txt"
}

kernels=()
for k; do
    v=$(resolve "$k") || exit 2
    kernels+=("$v")
done
for v in "${kernels[@]}"; do fetch "$v"; done
log "booting ${kernels[*]} ($accel)"
wall=$SECONDS
if [ "${KERNEL_MATRIX_PARALLEL:-1}" = 1 ]; then
    for v in "${kernels[@]}"; do boot "$v" & done
    wait
else
    for v in "${kernels[@]}"; do boot "$v"; done
fi
wall=$((SECONDS - wall))

# The report: per kernel, every check with its result; a check without a
# result (the VM died, timed out) is a failure.
mapfile -t checks < <(./scripts/kernel-smoke.sh --list)
failed=0
{
    echo "Kernel matrix: ${#kernels[@]} kernel(s), qemu $accel, ${wall}s in all"
    for v in "${kernels[@]}"; do
        out=$results/$v
        read -r rc secs <"$out/vm.txt" 2>/dev/null || { rc=none secs=?; }
        booted=$(cat "$out/kernel.txt" 2>/dev/null || echo "did not boot")
        echo
        echo "linux-image-$v: booted $booted; VM exit $rc after ${secs}s"
        pass=0
        for c in "${checks[@]}"; do
            line=$(awk -F'\t' -v c="$c" '$1 == c' "$out/results.tsv" 2>/dev/null)
            if [ -z "$line" ]; then
                printf '  %-18s NOT RUN\n' "$c"
                failed=1
                continue
            fi
            IFS=$'\t' read -r _ result s why <<<"$line"
            printf '  %-18s %s (%ss)%s\n' "$c" "$result" "$s" "${why:+  $why}"
            if [ "$result" = PASS ]; then pass=$((pass + 1)); else failed=1; fi
        done
        echo "  $pass/${#checks[@]} passed; logs: $out/"
    done
} >"$results/report.txt"
cat "$results/report.txt"
exit $failed
