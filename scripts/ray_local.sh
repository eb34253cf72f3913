#!/usr/bin/env bash
# A local Ray cluster for tests and CI: `ray start --head` on 127.0.0.1 with its own temp dir, and a
# stop that ends exactly the processes of that cluster (`ray stop` would end every Ray on the machine).
#
#   scripts/ray_local.sh start    start the head (waits until it accepts a driver), print RAY_ADDRESS; refuses a
#                                 temp dir whose cluster runs and a GCS port another program holds
#   scripts/ray_local.sh stop     end this cluster's processes (SIGTERM, then SIGKILL), remove the temp dir
#   scripts/ray_local.sh status   `ray status` against it
#   scripts/ray_local.sh env      the line a client shell evals: export RAY_ADDRESS=...
#
# Environment: LLMBENCH_RAY_DIR (temp dir, default /tmp/llmbench-ray; keep it short, Ray puts unix
# sockets under it and a socket path is limited to 107 bytes), LLMBENCH_RAY_PORT (GCS port, default
# 6390), LLMBENCH_RAY_CPUS (default: nproc), LLMBENCH_RAY_GPUS (default: Ray's own count),
# LLMBENCH_RAY_OBJECT_STORE_MB (default 512: Ray's default is 30% of RAM in /dev/shm),
# LLMBENCH_RAY_PYTHON (the python whose ray to use, default: python3 on PATH), LLMBENCH_RAY_KEEP=1
# (stop keeps the temp dir, for its logs). One start, one stop per temp dir: a second user of the same dir would
# share the cluster, and the first stop (another CI run's exit trap) would end it under the other's tasks.
# .ci/run gives each run its own dir and port.
set -euo pipefail

TEMP=${LLMBENCH_RAY_DIR:-/tmp/llmbench-ray}
PORT=${LLMBENCH_RAY_PORT:-6390}
PY=${LLMBENCH_RAY_PYTHON:-python3}
ADDRESS=127.0.0.1:$PORT
# Ray replaces 127.0.0.1 by the address of the default route's interface ("remotely reachable"), and
# binds its agents there, unless this is 0: then every component uses 127.0.0.1.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
# no usage report to anyscale.com
export RAY_USAGE_STATS_ENABLED=0
# Ray 2.5x turns on token authentication whenever ~/.ray/auth_token exists (any earlier ray.init writes one),
# and a client then needs RAY_AUTH_MODE=token to connect: this cluster uses a token of its own, in its temp dir,
# and `env` prints what a client needs
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$TEMP/auth_token

log() { echo "ray_local: $*" >&2; }

ancestors() {  # this shell and its parents: a command line that merely mentions the temp dir is not Ray's
    local p=$$
    while [[ $p -gt 1 ]]; do echo "$p"; p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || echo 1); done
}

cluster_pids() {  # processes with an option =TEMP/... (gcs_server, raylet, monitors), and their children
    local p roots mine
    mine=" $(ancestors | tr '\n' ' ') "
    roots=$(pgrep -f -- "=$TEMP(/| |$)" || true)
    for p in $roots; do
        [[ $mine == *" $p "* ]] && continue
        echo "$p"
        pgrep -P "$p" || true
    done
}

cmd_start() {
    if [[ -n $(cluster_pids) ]]; then
        log "already running in $TEMP: stop it first (scripts/ray_local.sh stop), or give this cluster its own" \
            "LLMBENCH_RAY_DIR and LLMBENCH_RAY_PORT"
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        log "port $PORT is in use by another program: choose another LLMBENCH_RAY_PORT"
        exit 1
    fi
    local args=(--head --node-ip-address 127.0.0.1 --port "$PORT" --num-cpus "${LLMBENCH_RAY_CPUS:-$(nproc)}"
        --include-dashboard=false --disable-usage-stats --temp-dir "$TEMP"
        --object-store-memory $((${LLMBENCH_RAY_OBJECT_STORE_MB:-512} * 1024 * 1024)))
    [[ -n ${LLMBENCH_RAY_GPUS:-} ]] && args+=(--num-gpus "$LLMBENCH_RAY_GPUS")
    mkdir -p "$TEMP"
    [[ -s $RAY_AUTH_TOKEN_PATH ]] || (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$RAY_AUTH_TOKEN_PATH")
    "$PY" -m ray.scripts.scripts start "${args[@]}" >"$TEMP/start.log" 2>&1 \
        || { log "ray start failed:"; tail -n 20 "$TEMP/start.log" >&2; exit 1; }
    # ray start returns once the GCS and raylet are up; a driver can connect from then on
    log "up: $ADDRESS, temp dir $TEMP"
    cmd_env
}

cmd_env() { echo "export RAY_ADDRESS=$ADDRESS RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH"; }

cmd_stop() {
    local pids p
    pids=$(cluster_pids | sort -u)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        kill $pids 2>/dev/null || true
        for _ in $(seq 50); do  # 5 s, then SIGKILL: a test cluster has nothing worth a long flush
            pids=$(for p in $pids; do if kill -0 "$p" 2>/dev/null; then echo "$p"; fi; done)
            [[ -z $pids ]] && break
            sleep 0.1
        done
        # shellcheck disable=SC2086
        [[ -z $pids ]] || kill -9 $pids 2>/dev/null || true
    fi
    # workers started after the first listing (their parent, the raylet, is gone now: they exit on their own)
    for _ in $(seq 50); do [[ -z $(cluster_pids) ]] && break; sleep 0.1; done
    if [[ ${LLMBENCH_RAY_KEEP:-0} == 1 ]]; then log "stopped; temp dir kept: $TEMP"; else rm -rf "$TEMP"; log "stopped"; fi
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) RAY_ADDRESS=$ADDRESS "$PY" -m ray.scripts.scripts status ;;
    env) cmd_env ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
