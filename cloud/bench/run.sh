#!/usr/bin/env bash
# The AWS endpoint's benchmark (issue 16): signed STS GetCallerIdentity and ECR
# GetAuthorizationToken per second, netlab-cloud against moto's server (the usual local AWS
# simulator), each server pinned to one core, wrk on the other.
#
# Every request carries a real SigV4 signature made by botocore (sign.py) and is verified on
# every request. Both servers keep their state in memory (netlab-cloud without --data-dir; with
# it, GetAuthorizationToken also writes the account file per token: PERSIST=1 adds that row).
#
# Needs: the release binaries (`cargo build --release -p netlab-cloud -p netlab-cli`), python3
# with botocore and moto's server (`pip install "moto[server]" awscli`), wrk and taskset
# (`apt-get install -y wrk util-linux`).
# Knobs: DURATION=10 CONNECTIONS=32 SERVER_CPU=1 CLIENT_CPU=0 PORT_BASE=25400 PERSIST=1
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${BIN:-$ROOT/target/release}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT_BASE=${PORT_BASE:-25400}
PERSIST=${PERSIST:-1}

for tool in wrk taskset python3 moto_server; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install -y wrk util-linux; pip install 'moto[server]')" >&2; exit 1; }
done
[ -x "$BIN/netlab-cloud" ] && [ -x "$BIN/netlab" ] || { echo "missing: $BIN/netlab-cloud or netlab (cargo build --release -p netlab-cloud -p netlab-cli)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/netlab-aws-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

start_netlab() { # port [data-dir]
    local args=(--aws-listen "127.0.0.1:$1" --imds-listen 127.0.0.1:0 --registry-listen 127.0.0.1:0
                --dns-listen 127.0.0.1:0 --healthz-bind-address 127.0.0.1:0 --ec2-instances node-1=t3.medium)
    [ -n "${2:-}" ] && args+=(--data-dir "$2")
    RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN/netlab-cloud" "${args[@]}" >"$WORK/netlab-$1.log" 2>&1 &
    PIDS+=($!); wait_port "$1"
}

NETLAB=$((PORT_BASE)); NETLAB_DISK=$((PORT_BASE + 1)); MOTO=$((PORT_BASE + 2))
start_netlab "$NETLAB"
[ "$PERSIST" = 1 ] && start_netlab "$NETLAB_DISK" "$WORK/account"
taskset -c "$SERVER_CPU" moto_server -p "$MOTO" >"$WORK/moto.log" 2>&1 &
PIDS+=($!); wait_port "$MOTO"

# netlab's admin key (the account's own); moto takes any key.
eval "$("$BIN/netlab" aws env --endpoint "http://127.0.0.1:$NETLAB")"

run() { # label port service body [target]
    python3 "$HERE/sign.py" "http://127.0.0.1:$2" "$3" "$4" "${5:-}" >"$WORK/req.lua"
    # A refused request (a wrong signature, say) is fast: wrk's non-2xx count shows any.
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/req.lua" "http://127.0.0.1:$2/" >"$WORK/wrk.out"
    local rps non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/wrk.out"); non2xx=${non2xx:-0}
    printf '| %s | %s | %s |\n' "$1" "$rps" "$non2xx"
}

STS_BODY="Action=GetCallerIdentity&Version=2011-06-15"
ECR_TARGET="AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
echo "| server, call | requests/s (one core) | non-2xx |"
echo "|---|---|---|"
run "netlab-cloud, sts:GetCallerIdentity" "$NETLAB" sts "$STS_BODY"
run "moto_server, sts:GetCallerIdentity" "$MOTO" sts "$STS_BODY"
run "netlab-cloud, ecr:GetAuthorizationToken" "$NETLAB" ecr "{}" "$ECR_TARGET"
run "moto_server, ecr:GetAuthorizationToken" "$MOTO" ecr "{}" "$ECR_TARGET"
if [ "$PERSIST" = 1 ]; then
    run "netlab-cloud --data-dir, ecr:GetAuthorizationToken" "$NETLAB_DISK" ecr "{}" "$ECR_TARGET"
fi
