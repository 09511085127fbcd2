#!/usr/bin/env bash
# bench/log-load.sh — benchmark 6(c) of the bunyan issue: snooping under load.
#
# The example service (examples/log-service) handles requests at a paced
# 200,000 requests/s (one debug record each, suppressed by its info level)
# for DURATION seconds (default 5), without and with a snooper
# (`bunyan-snoop PID`, the engine behind `bunyan -p`; and `bunyan -p PID -l
# debug -o bunyan` when the CLI is built; and `bunyan-snoop -l info PID`,
# which leaves the debug probe off), interleaved, RUNS times (default 5).  The snooper attaches during the service's 1 s start delay, so every
# debug record is emitted while it is attached: share delivered = debug
# records received / requests.
# Two more groups show the cost where CPU, not the pace, is the limit:
# "saturated" runs flat out (--rate 0) with --work WORK (default 3000, about
# 4-5 us of arithmetic per request: ~200,000 requests/s on one core here),
# and "flat out" runs with no work at all (the service does nothing but
# log; with a snooper this is the most records/s one process can hand over).
# Prints a Markdown table of medians.  Needs root (eBPF).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
RUNS=${RUNS:-5}
DURATION=${DURATION:-5}
RATE=${RATE:-200000}
cargo build --release -q -p log-service -p bunyan-snoop
SVC=$T/release/log-service
SNOOP=$T/release/bunyan-snoop
CLI=$T/release/bunyan
OUT=$(mktemp)
TMP=$(mktemp -d)
trap 'rm -rf "$OUT" "$TMP"' EXIT

# One run: $1 = label, $2 = rate, $3 = work, $4 = snooper (none|engine|cli).
run() {
    local label=$1 rate=$2 work=$3 snooper=$4
    "$SVC" --rate "$rate" --work "$work" --duration "$DURATION" --delay 1 >/dev/null 2>"$TMP/svc.err" &
    local pid=$!
    local got=0 dropped=0
    case $snooper in
        none) wait "$pid" ;;
        engine)
            sleep 0.2
            got=$("$SNOOP" "$pid" 2>"$TMP/snoop.err" | grep -c '"level":20' || true)
            wait "$pid"
            dropped=$(sed -n 's/.* \([0-9]*\) dropped.*/\1/p' "$TMP/snoop.err")
            ;;
        engine-info)
            sleep 0.2
            "$SNOOP" -l info "$pid" >/dev/null 2>"$TMP/snoop.err"
            wait "$pid"
            dropped=$(sed -n 's/.* \([0-9]*\) dropped.*/\1/p' "$TMP/snoop.err")
            ;;
        cli)
            sleep 0.2
            got=$("$CLI" -p "$pid" -l debug -o bunyan 2>"$TMP/snoop.err" | grep -c '"level":20' || true)
            wait "$pid"
            dropped=$(grep -o '[0-9]* dropped\|dropped[^0-9]*[0-9]*' "$TMP/snoop.err" | grep -o '[0-9]*' | head -1 || true)
            ;;
    esac
    python3 - "$label" "$got" "${dropped:-0}" "$TMP/svc.err" >>"$OUT" <<'PY'
import json, sys
label, got, dropped, err = sys.argv[1], int(sys.argv[2]), int(sys.argv[3] or 0), sys.argv[4]
s = json.loads(open(err).read().strip().splitlines()[-1])
s.update(label=label, delivered=got, dropped=dropped)
print(json.dumps(s))
PY
}

WORK=${WORK:-3000}
VARIANTS=("paced none" "paced engine" "paced engine-info" "saturated none" "saturated engine" "saturated engine-info" "flat engine")
if [ -x "$CLI" ] && "$CLI" --help 2>&1 | grep -q -- '-p'; then
    VARIANTS+=("paced cli")
fi
for ((r = 0; r < RUNS; r++)); do
    n=${#VARIANTS[@]}
    for ((i = 0; i < n; i++)); do
        read -r kind snooper <<<"${VARIANTS[$(((i + r) % n))]}"
        case $kind in
            paced) run "$kind/$snooper" "$RATE" 0 "$snooper" ;;
            saturated) run "$kind/$snooper" 0 "$WORK" "$snooper" ;;
            flat) run "$kind/$snooper" 0 0 "$snooper" ;;
        esac
    done
done

python3 - "$OUT" "$RATE" "$WORK" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)
med = lambda xs: statistics.median(xs)
print("| run | snooper | requests/s (median) | vs. no snooper | service CPU s (median) | debug records delivered | dropped | runs |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for label in ["paced/none", "paced/engine", "paced/cli", "paced/engine-info",
              "saturated/none", "saturated/engine", "saturated/engine-info", "flat/engine"]:
    rs = by.get(label)
    if not rs:
        continue
    kind, snooper = label.split("/")
    base = by.get(kind + "/none")
    rate = med([r["per_sec"] for r in rs])
    rel = "" if snooper == "none" or not base else f"{(rate / med([r['per_sec'] for r in base]) - 1) * 100:+.1f}%"
    cpu = med([r["cpu_seconds"] for r in rs])
    if snooper == "none":
        share = "-"
        drop = "-"
    elif snooper == "engine-info":
        share = "none wanted (info only)"
        drop = str(int(med([r["dropped"] for r in rs])))
    else:
        shares = [r["delivered"] / r["requests"] for r in rs]
        share = f"{med(shares) * 100:.2f}% (min {min(shares) * 100:.2f}%)"
        drop = str(int(med([r["dropped"] for r in rs])))
    name = {"none": "none", "engine": "bunyan-snoop", "engine-info": "bunyan-snoop -l info",
            "cli": "bunyan -p -l debug"}[snooper]
    kname = {"paced": f"paced {int(sys.argv[2]):,}/s", "saturated": f"saturated (--work {sys.argv[3]})", "flat": "flat out, no work"}[kind]
    print(f"| {kname} | {name} | {rate:,.0f} | {rel} | {cpu:.2f} | {share} | {drop} | {len(rs)} |")
PY
