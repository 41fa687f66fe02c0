#!/usr/bin/env bash
# The dns benchmark of issue 6, end to end: netlab-dns and unbound side by side under dnsperf.
#
# What it does (see BENCHMARKS.md, section "dns", for the numbers and their reading):
#   1. starts the release apiserver and netlab-cloud (the lab's upstream resolver), loads gen.py's
#      cluster (100 namespaces x 100 Services, each with an EndpointSlice of 3 ready endpoints);
#   2. starts netlab-dns (kubeadm's Corefile from the bootstrap ConfigMap, `forward .` to the cloud),
#      a second netlab-dns with RUST_LOG=warn (diagnostic: the same server without its per-query
#      tracing span; set DIAG=0 to skip it), and unbound with a generated config: a static
#      `cluster.local.` zone holding the same 10,002 A records (read back from the apiserver, so
#      the ClusterIPs are the ones netlab-dns serves) and `forward-zone: "."` to the same cloud;
#   3. checks that both servers give the same answers, then for each case (in-cluster A, NXDOMAIN,
#      a forwarded external name with a warm cache) and each server: a warm-up run, then a measured
#      dnsperf run with -v (per-query latencies → p50/p99), the server's CPU time and dnsperf's;
#      then the in-cluster queries again at a fixed RATE (dnsperf -Q) that every server sustains,
#      for latency without queueing (RATE=0 skips it);
#   4. prints a markdown table, the servers' memory, and cleans up.
# Servers are pinned to SERVER_CPU, dnsperf (and the idle apiserver and cloud) to CLIENT_CPU.
#
# Needs: the release binaries (`cargo build --release -p netlab-apiserver -p netlab-dns
# -p netlab-cloud -p netlab-cli`), python3, and Debian's dnsperf and unbound
# (`apt-get install -y dnsperf unbound`; if apt starts an unbound service, stop it — this script
# runs its own in the foreground on a high port).
#
# Knobs (environment): DURATION=30 WARMUP=5 CLIENTS=100 OUTSTANDING=100 SERVER_CPU=1 CLIENT_CPU=0
# PORT_BASE=25300 BIN=<repo>/target/release DIAG=1 RATE=10000 KEEP=0 (KEEP=1 leaves the work dir)
# CASES="incluster-A NXDOMAIN forwarded-cached rate" (a subset reruns only those).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${BIN:-$ROOT/target/release}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
CLIENTS=${CLIENTS:-100}
OUTSTANDING=${OUTSTANDING:-100}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT_BASE=${PORT_BASE:-25300}
DIAG=${DIAG:-1}
RATE=${RATE:-10000}
CASES=${CASES:-incluster-A NXDOMAIN forwarded-cached rate}
KEEP=${KEEP:-0}

API_PORT=$PORT_BASE
UP_PORT=$((PORT_BASE + 1))            # cloud's DNS (UDP+TCP)
DNS_PORT=$((PORT_BASE + 10))          # netlab-dns; +11..13 health/ready/metrics
QUIET_PORT=$((PORT_BASE + 20))        # netlab-dns with RUST_LOG=warn; +21..23
UNBOUND_PORT=$((PORT_BASE + 30))
API=http://127.0.0.1:$API_PORT

for tool in dnsperf unbound python3 taskset curl; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install -y dnsperf unbound python3 curl util-linux)" >&2; exit 1; }
done
for b in netlab-apiserver netlab-dns netlab-cloud netlab; do
    [ -x "$BIN/$b" ] || { echo "missing: $BIN/$b (cargo build --release -p netlab-apiserver -p netlab-dns -p netlab-cloud -p netlab-cli)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/netlab-dns-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$KEEP" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { echo "[$(date +%T)] $*" >&2; }

# A tiny DNS client (no dig needed): `dnsq.py PORT NAME` prints "RCODE ip,ip".
cat > "$WORK/dnsq.py" <<'EOF'
import socket, struct, sys, random
port, name = int(sys.argv[1]), sys.argv[2]
qid = random.randrange(65536)
qn = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
s.sendto(struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qn + b"\0\1\0\1", ("127.0.0.1", port))
try:
    r = s.recv(4096)
except socket.timeout:
    print("TIMEOUT"); sys.exit()
rcode = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"][r[3] & 15]
an = struct.unpack(">H", r[6:8])[0]
i = 12 + len(qn) + 4
ips = []
def skip(i):
    while r[i] != 0 and r[i] < 0xC0: i += r[i] + 1
    return i + (2 if r[i] >= 0xC0 else 1)
for _ in range(an):
    i = skip(i)
    t, _, _, ln = struct.unpack(">HHIH", r[i:i + 10]); i += 10
    if t == 1: ips.append(".".join(map(str, r[i:i + 4])))
    i += ln
print(rcode, ",".join(sorted(ips)))
EOF
dnsq() { python3 "$WORK/dnsq.py" "$@"; }
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $*" >&2; return 1; }
        sleep 0.2
    done
}
answers() { [ "$(dnsq "$1" "$2" | cut -d' ' -f1)" = "$3" ]; }

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews the numbers)"

# --- apiserver, cloud, the cluster -----------------------------------------------------------
taskset -c "$CLIENT_CPU" "$BIN/netlab-apiserver" --listen "127.0.0.1:$API_PORT" --data-dir "$WORK/apiserver" >"$WORK/apiserver.log" 2>&1 &
PIDS+=($!)
taskset -c "$CLIENT_CPU" "$BIN/netlab-cloud" --dns-listen "127.0.0.1:$UP_PORT" \
    --registry-listen "127.0.0.1:$((PORT_BASE + 2))" --healthz-bind-address "127.0.0.1:$((PORT_BASE + 3))" >"$WORK/cloud.log" 2>&1 &
PIDS+=($!)
wait_for 30 "$BIN/netlab" -s "$API" get ns default
wait_for 30 answers "$UP_PORT" api.example.com NOERROR

mkdir -p "$WORK/gen"
(cd "$WORK/gen" && python3 "$HERE/gen.py")
# gen.py's forwarded.txt (host-N.example.com) is for upstream.py; the cloud knows api.example.com.
printf 'api.example.com A\n' >"$WORK/gen/external.txt"
log "applying 100 namespaces x (100 Services + 100 EndpointSlices)"
ls "$WORK"/gen/ns-*.yaml | xargs -P 8 -I{} sh -c "'$BIN/netlab' -s '$API' apply -f {} >/dev/null"
"$BIN/netlab" -s "$API" get svc -A \
    -o jsonpath='{range .items[*]}{.metadata.name}.{.metadata.namespace} {.spec.clusterIP}{"\n"}{end}' >"$WORK/clusterips.txt"
log "services in the apiserver: $(wc -l <"$WORK/clusterips.txt")"

# --- the servers ------------------------------------------------------------------------------
start_dns() { # start_dns PORT [env...]: netlab-dns on PORT (DNS) and PORT+1..3 (health, ready, metrics)
    local port=$1; shift
    env "$@" taskset -c "$SERVER_CPU" "$BIN/netlab-dns" --server "$API" --listen "127.0.0.1:$port" \
        --health-listen "127.0.0.1:$((port + 1))" --ready-listen "127.0.0.1:$((port + 2))" \
        --metrics-listen "127.0.0.1:$((port + 3))" --upstream "127.0.0.1:$UP_PORT" \
        --advertise-address 127.0.0.1 --register false >"$WORK/dns-$port.log" 2>&1 &
    PIDS+=($!)
    echo $! >"$WORK/dns-$port.pid"
    wait_for 60 curl -fs "http://127.0.0.1:$((port + 2))/ready"
    wait_for 30 answers "$port" svc-99.ns-99.svc.cluster.local NOERROR
}
start_dns "$DNS_PORT"
DNS_PID=$(cat "$WORK/dns-$DNS_PORT.pid")
if [ "$DIAG" = 1 ]; then
    start_dns "$QUIET_PORT" RUST_LOG=warn
    QUIET_PID=$(cat "$WORK/dns-$QUIET_PORT.pid")
fi

# unbound: the same A records as local-data in a static zone (NXDOMAIN for the rest of it, with
# the SOA netlab-dns/CoreDNS put in Authority), everything else forwarded to the cloud.
{
    cat <<EOF
server:
    interface: 127.0.0.1
    port: $UNBOUND_PORT
    do-ip6: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "$WORK"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    do-not-query-localhost: no
    local-zone: "cluster.local." static
    local-data: "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30"
EOF
    awk '{ printf "    local-data: \"%s.svc.cluster.local. 30 IN A %s\"\n", $1, $2 }' "$WORK/clusterips.txt"
    cat <<EOF
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$UP_PORT
EOF
} >"$WORK/unbound.conf"
unbound-checkconf "$WORK/unbound.conf" >/dev/null
taskset -c "$SERVER_CPU" unbound -d -c "$WORK/unbound.conf" >"$WORK/unbound.log" 2>&1 &
UNBOUND_PID=$!
PIDS+=($UNBOUND_PID)
wait_for 30 answers "$UNBOUND_PORT" svc-99.ns-99.svc.cluster.local NOERROR

# --- same answers? ----------------------------------------------------------------------------
log "checking that the servers agree"
for f in incluster nxdomain external; do
    head -n 20 "$WORK/gen/$f.txt" | while read -r name _; do
        a=$(dnsq "$DNS_PORT" "$name"); b=$(dnsq "$UNBOUND_PORT" "$name")
        [ "$a" = "$b" ] || { echo "answers differ for $name: netlab-dns '$a', unbound '$b'" >&2; exit 1; }
    done
done

# --- runs -------------------------------------------------------------------------------------
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
core_busy() { awk -v c="cpu$SERVER_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
utime() { awk '{ print $14 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
forwarded() { curl -fs "http://127.0.0.1:$(($1 + 3))/metrics" | awk '/^coredns_forward_requests_total/ { n += $NF } END { print n + 0 }'; }

RESULTS=$WORK/results.tsv
: >"$RESULTS"
run_case() { # run_case SERVER-LABEL PORT PID CASE FILE [DNSPERF-ARGS...]
    local label=$1 port=$2 pid=$3 case=$4 file=$5 out="$WORK/$1-${4//\//_}"
    shift 5
    log "$label / $case: warm-up ${WARMUP}s, then ${DURATION}s"
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$WARMUP" -c "$CLIENTS" -q "$OUTSTANDING" "$@" >"$out.warmup" 2>&1
    local fwd0="" t0 u0 b0
    [ "$label" = unbound ] || fwd0=$(forwarded "$port")
    t0=$(ticks "$pid"); u0=$(utime "$pid"); b0=$(core_busy)
    local TIMEFORMAT='%U %S %R'
    { time taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$DURATION" \
        -c "$CLIENTS" -q "$OUTSTANDING" "$@" -v >"$out.dnsperf" 2>&1; } 2>"$out.time"
    local t1 u1 b1 fwd=""
    t1=$(ticks "$pid"); u1=$(utime "$pid"); b1=$(core_busy)
    [ "$label" = unbound ] || fwd=$(($(forwarded "$port") - fwd0))
    awk '$1 == ">" && $NF ~ /^[0-9.]+$/ { print $NF }' "$out.dnsperf" | sort -g >"$out.lat"
    local n p50 p99
    n=$(wc -l <"$out.lat")
    p50=$(sed -n "$(((n * 50 + 99) / 100))p" "$out.lat")
    p99=$(sed -n "$(((n * 99 + 99) / 100))p" "$out.lat")
    python3 - "$out.dnsperf" "$out.time" "$label" "$case" "$p50" "$p99" "$((t1 - t0))" "$((u1 - u0))" "$HZ" "$fwd" "$((b1 - b0 - (t1 - t0)))" >>"$RESULTS" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
def get(pat, cast=float):
    m = re.search(pat, text)
    return cast(m.group(1)) if m else float("nan")
sent = get(r"Queries sent:\s+(\d+)", int)
lost = get(r"Queries lost:\s+(\d+)", int)
qps = get(r"Queries per second:\s+([\d.]+)")
avg = get(r"Average Latency \(s\):\s+([\d.]+)")
mx = get(r"Average Latency \(s\):.*max ([\d.]+)\)")
sd = get(r"Latency StdDev \(s\):\s+([\d.]+)")
run = get(r"Run time \(s\):\s+([\d.]+)")
codes = re.search(r"Response codes:\s+(.*)", text)
codes = re.sub(r" \(100\.00%\)", "", codes.group(1).strip()) if codes else "?"
user, sys_, real = map(float, open(sys.argv[2]).read().split()[-3:])
label, case, p50, p99, ticks, uticks, hz, fwd, other = sys.argv[3:12]
ms = lambda s: f"{float(s) * 1000:.2f}" if s else "?"
cpu = int(ticks) / int(hz) / run * 100
ucpu = int(uticks) / int(hz) / run * 100
print("\t".join([label, case, f"{qps:,.0f}", f"{qps / cpu * 100:,.0f}", f"{sent:,}", str(lost), ms(avg), ms(sd), ms(p50), ms(p99), ms(mx),
                 f"{cpu:.0f}% ({ucpu:.0f}% user)", f"{max(0, int(other)) / int(hz) / run * 100:.0f}%",
                 f"{(user + sys_) / real * 100:.0f}%", codes, fwd or "-"]))
EOF
}

SERVERS=("netlab-dns $DNS_PORT $DNS_PID" "unbound $UNBOUND_PORT $UNBOUND_PID")
[ "$DIAG" = 1 ] && SERVERS+=("netlab-dns(RUST_LOG=warn) $QUIET_PORT $QUIET_PID")
for c in "incluster-A incluster" "NXDOMAIN nxdomain" "forwarded-cached external"; do
    read -r cname file <<<"$c"
    [[ " $CASES " == *" $cname "* ]] || continue
    for s in "${SERVERS[@]}"; do
        read -r label port pid <<<"$s"
        run_case "$label" "$port" "$pid" "$cname" "$WORK/gen/$file.txt"
    done
done
# The same in-cluster queries at a fixed rate every server keeps up with: latency without queueing.
if [ "$RATE" -gt 0 ] && [[ " $CASES " == *" rate "* ]]; then
    for s in "${SERVERS[@]}"; do
        read -r label port pid <<<"$s"
        run_case "$label" "$port" "$pid" "incluster-A@${RATE}/s" "$WORK/gen/incluster.txt" -Q "$RATE"
    done
fi

rss() { awk '/^VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }

echo
echo "dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION (after ${WARMUP}s warm-up), UDP; servers on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| server | case | QPS | QPS per core (QPS ÷ server CPU) | queries | lost | avg ms | stddev ms | p50 ms | p99 ms | max ms | server CPU | others on its CPU | dnsperf CPU | rcodes | upstream queries |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
awk -F'\t' '{ printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$RESULTS"
echo
echo "memory after the runs (10,002 Services, 10,000 EndpointSlices): netlab-dns RSS $(rss "$DNS_PID") (peak $(hwm "$DNS_PID")); unbound RSS $(rss "$UNBOUND_PID") (peak $(hwm "$UNBOUND_PID"))"
echo "versions: $(unbound -V | head -1); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }'); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
