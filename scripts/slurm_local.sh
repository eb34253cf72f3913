#!/usr/bin/env bash
# A single-node Slurm for tests and CI: munged + (MariaDB + slurmdbd) + slurmctld + slurmd on this
# machine, loopback only, everything (config, key, sockets, database, spool, logs) in one state dir.
#
#   scripts/slurm_local.sh start    install the Debian packages if missing, configure, start, wait until idle;
#                                   refuses a state dir whose daemons run and ports another program holds
#   scripts/slurm_local.sh stop     cancel jobs, stop the daemons, remove the state dir
#   scripts/slurm_local.sh status   the daemons' pids and sinfo (exit 1 if one is down)
#   scripts/slurm_local.sh env      the line a client shell evals: export SLURM_CONF=...
#
# Clients (sbatch, squeue, sacct, submitit) find this cluster through SLURM_CONF; nothing is written to
# /etc. Needs root (the daemons run as root, SlurmUser=root).
# Environment:
#   LLMBENCH_SLURM_DIR         state dir (default /tmp/llmbench-slurm)
#   LLMBENCH_SLURM_PORT        slurmctld port (default 6817); slurmd +1, slurmdbd +2, mariadbd +3
#   LLMBENCH_SLURM_ACCOUNTING  1 (default): MariaDB + slurmdbd too, so sacct works as on a real cluster
#                              (submitit reads job states with sacct); 0: none, sacct fails, and a
#                              finished job's state is only in squeue/scontrol for MinJobAge seconds and
#                              in the job-completion log ($STATE/log/jobcomp.txt)
#   LLMBENCH_SLURM_MIN_JOB_AGE seconds a finished job stays in squeue/scontrol (default 120)
#   LLMBENCH_SLURM_KEEP=1      stop keeps the state dir (its logs)
# One start, one stop per state dir: a second user of the same dir would share the cluster, and the first
# stop (another CI run's exit trap) would end it under the other's jobs. .ci/run gives each run its own dir
# and ports.
set -euo pipefail

STATE=${LLMBENCH_SLURM_DIR:-/tmp/llmbench-slurm}
PORT=${LLMBENCH_SLURM_PORT:-6817}
ACCOUNTING=${LLMBENCH_SLURM_ACCOUNTING:-1}
MIN_JOB_AGE=${LLMBENCH_SLURM_MIN_JOB_AGE:-120}
DBD_PORT=$((PORT + 2))
SQL_PORT=$((PORT + 3))
CONF=$STATE/etc/slurm.conf
SOCK=$STATE/munge/munge.socket.2
NODE=$(hostname -s)
export SLURM_CONF=$CONF

log() { echo "slurm_local: $*" >&2; }
pid_alive() {  # the pid in pidfile $1 runs, and is the daemon the file is named after (not a reused pid)
    local pid
    [[ -s $1 ]] && pid=$(cat "$1") && kill -0 "$pid" 2>/dev/null \
        && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$(basename "$1" .pid)" ]]
}

install_packages() {
    local pkgs=(slurm-wlm munge) cmds=(slurmctld slurmd munged sbatch sacct) missing="" c
    if [[ $ACCOUNTING == 1 ]]; then pkgs+=(slurmdbd mariadb-server); cmds+=(slurmdbd mariadbd mariadb-install-db); fi
    for c in "${cmds[@]}"; do command -v "$c" >/dev/null || missing=1; done
    [[ -z $missing ]] && return 0
    log "installing ${pkgs[*]} (apt-get)"
    # Debian's postinst would start munge, slurm* and mariadb through invoke-rc.d: a policy-rc.d that
    # answers 101 stops that, so no daemon runs outside the state dir. Added only if the machine has
    # none, removed after.
    local policy=/usr/sbin/policy-rc.d added=""
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; added=1; fi
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q)
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "${pkgs[@]}" >/dev/null \
        || { "${apt[@]}" update >/dev/null \
            && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "${pkgs[@]}" >/dev/null; }
    [[ -z $added ]] || rm -f "$policy"
}

accounting_lines() {
    if [[ $ACCOUNTING == 1 ]]; then
        printf '%s\n' "# accounting through slurmdbd (MariaDB in the state dir): sacct works as on a real cluster" \
            "AccountingStorageType=accounting_storage/slurmdbd" "AccountingStorageHost=127.0.0.1" \
            "AccountingStoragePort=$DBD_PORT" \
            "# the munge socket for connections to slurmdbd (sacct, sacctmgr, slurmctld); AuthInfo is not used there" \
            "AccountingStoragePass=$SOCK"
    else
        printf '%s\n' "# no slurmdbd: sacct has nothing to read; final states stay in squeue/scontrol for" \
            "# MinJobAge seconds and go to the job-completion log" "AccountingStorageType=accounting_storage/none"
    fi
}

write_config() {
    # slurmd -C reports this machine as Slurm sees it; declaring exactly that topology keeps the node
    # from being drained for a mismatch. RealMemory is 1 GiB under the measured total (MB) for the same reason.
    local hw cpus mem topo
    hw=$(slurmd -C | head -1)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$((mem > 2048 ? mem - 1024 : mem))
    topo=$(grep -o 'Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$hw")
    cat >"$CONF" <<EOF
# written by scripts/slurm_local.sh: one node, loopback only
ClusterName=llmbench
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# no cgroups: proctrack/linuxproc follows a job's processes by parent pid, task/none binds nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
# no cgroup to enforce --mem: the accounting poller kills a step over its limit (state OUT_OF_MEMORY)
JobAcctGatherParams=OverMemoryKill
$(accounting_lines)
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
MinJobAge=$MIN_JOB_AGE
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MpiDefault=none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus $topo RealMemory=$mem State=UNKNOWN
# preemption for tests: a job in "urgent" preempts one in "debug" (requeued, as most sites do) or in
# "scavenger" (cancelled, state PREEMPTED)
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE
PartitionName=scavenger Nodes=$NODE MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=CANCEL
PartitionName=urgent Nodes=$NODE MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
}

start_munge() {
    pid_alive "$STATE/munge/munged.pid" && return 0
    # munged checks: the key owned by us and unreadable by others; the socket's dir reachable (o+x)
    if [[ ! -s $STATE/munge/munge.key ]]; then
        dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1 count=1024 status=none
        chmod 400 "$STATE/munge/munge.key"
    fi
    munged --key-file="$STATE/munge/munge.key" --socket="$SOCK" --pid-file="$STATE/munge/munged.pid" \
        --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/munged.seed"
}

start_mariadb() {  # a private MariaDB on 127.0.0.1:SQL_PORT, datadir in the state dir
    local db=$STATE/db sql=(mariadb --no-defaults -S "$STATE/db/mariadbd.sock" -uroot)
    pid_alive "$db/mariadbd.pid" && return 0
    [[ -d $db/data/mysql ]] || mariadb-install-db --no-defaults --datadir="$db/data" --user=root \
        --auth-root-authentication-method=normal --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1
    # small buffers: this database holds a few hundred job rows
    mariadbd --no-defaults --datadir="$db/data" --user=root --socket="$db/mariadbd.sock" \
        --pid-file="$db/mariadbd.pid" --bind-address=127.0.0.1 --port="$SQL_PORT" --skip-name-resolve \
        --log-error="$STATE/log/mariadbd.log" --innodb-buffer-pool-size=32M --skip-log-bin \
        --performance-schema=OFF </dev/null >/dev/null 2>&1 &
    for _ in $(seq 150); do "${sql[@]}" -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
    "${sql[@]}" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
    # slurmdbd reads slurmdbd.conf beside slurm.conf (SLURM_CONF's folder); it refuses one not 0600
    cat >"$STATE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$SOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$SQL_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$STATE/etc/slurmdbd.conf"
    pid_alive "$STATE/run/slurmdbd.pid" || slurmdbd
    # slurmctld registers its cluster with slurmdbd when it starts: slurmdbd must answer first
    for _ in $(seq 150); do timeout 5 sacctmgr -n -P show cluster >/dev/null 2>&1 && return 0; sleep 0.2; done
    log "slurmdbd does not answer; see $STATE/log/slurmdbd.log"
    return 1
}

wait_idle() {
    local limit=${LLMBENCH_SLURM_START_TIMEOUT:-60} state=""
    local deadline=$((SECONDS + limit))
    while ((SECONDS < deadline)); do
        state=$(timeout 5 sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
        case $state in
            idle | mixed | allocated) return 0 ;;
            drain* | down*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.3
    done
    log "node not idle after $limit s (state: '${state:-no answer}'); logs in $STATE/log"
    tail -n 5 "$STATE"/log/*.log >&2 || true
    return 1
}

check_traversable() {  # munged refuses a socket below a folder that others cannot enter (o+x)
    local d
    d=$(dirname "$(realpath -m "$STATE")")
    while [[ $d != / ]]; do
        [[ -e $d ]] && [[ $(( 0$(stat -c %a "$d") & 1 )) == 0 ]] \
            && { log "$d is not o+x: munged cannot serve a socket below it; choose another LLMBENCH_SLURM_DIR"; exit 1; }
        d=$(dirname "$d")
    done
    return 0
}

daemon_pidfiles() {  # name:pidfile of every daemon this state dir may run
    echo "munged:$STATE/munge/munged.pid" "mariadbd:$STATE/db/mariadbd.pid" "slurmdbd:$STATE/run/slurmdbd.pid" \
        "slurmctld:$STATE/run/slurmctld.pid" "slurmd:$STATE/run/slurmd.pid"
}

check_unused() {  # this state dir runs nothing yet, and nothing listens on its ports
    local d running="" p last=$((PORT + 1))
    for d in $(daemon_pidfiles); do pid_alive "${d#*:}" && running+=" ${d%%:*} (pid $(cat "${d#*:}"))"; done
    [[ -z $running ]] || { log "already running in $STATE:$running. Stop it first (scripts/slurm_local.sh stop), or" \
        "give this cluster its own LLMBENCH_SLURM_DIR and LLMBENCH_SLURM_PORT"; exit 1; }
    [[ $ACCOUNTING == 1 ]] && last=$SQL_PORT
    for ((p = PORT; p <= last; p++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            log "port $p (of $PORT-$last) is in use by another program: choose another LLMBENCH_SLURM_PORT"; exit 1
        fi
    done
}

cmd_start() {
    [[ $(id -u) == 0 ]] || { log "needs root (the daemons run as root)"; exit 1; }
    check_traversable
    check_unused
    install_packages
    mkdir -p "$STATE"/{etc,munge,ctld,spool,run,log,db}
    chmod 755 "$STATE" "$STATE/munge"
    write_config
    start_munge
    if [[ $ACCOUNTING == 1 ]]; then start_mariadb; start_slurmdbd; fi
    pid_alive "$STATE/run/slurmctld.pid" || slurmctld -f "$CONF"
    pid_alive "$STATE/run/slurmd.pid" || slurmd -f "$CONF" -N "$NODE"
    wait_idle
    log "up: node $NODE, port $PORT, accounting $ACCOUNTING, state dir $STATE"
    echo "export SLURM_CONF=$CONF"
}

stop_pidfile() {  # SIGTERM, up to 10 s, then SIGKILL
    local pid
    pid_alive "$1" || return 0
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

job_pids() {  # every process of a job on this cluster, orphans included: proctrack/linuxproc follows
    # parent links, so a job's child that outlived its parent escapes Slurm; its environment still says
    # which cluster and job it came from
    local f p
    for f in $(grep -lsxzF "SLURM_CONF=$CONF" /proc/[0-9]*/environ); do
        p=${f#/proc/}; p=${p%/environ}
        [[ $p == "$$" ]] && continue
        if { tr '\0' '\n' <"$f"; } 2>/dev/null | grep -q '^SLURM_JOB_ID='; then echo "$p"; fi
    done
    pgrep -x slurmstepd | while read -r p; do
        grep -qsxzF "SLURM_CONF=$CONF" "/proc/$p/environ" && echo "$p"
    done
}

cmd_stop() {
    if [[ -f $CONF ]] && pid_alive "$STATE/run/slurmctld.pid"; then
        timeout 10 scancel --quiet --user=root 2>/dev/null || true
        for _ in $(seq 75); do [[ -z $(timeout 5 squeue -h -t R,CG 2>/dev/null) ]] && break; sleep 0.2; done
    fi
    stop_pidfile "$STATE/run/slurmd.pid"
    stop_pidfile "$STATE/run/slurmctld.pid"
    stop_pidfile "$STATE/run/slurmdbd.pid"
    stop_pidfile "$STATE/db/mariadbd.pid"
    local p
    for p in $(job_pids); do kill -9 "$p" 2>/dev/null || true; done
    if pid_alive "$STATE/munge/munged.pid"; then
        munged --stop --socket="$SOCK" >/dev/null 2>&1 || stop_pidfile "$STATE/munge/munged.pid"
    fi
    if [[ ${LLMBENCH_SLURM_KEEP:-0} == 1 ]]; then log "stopped; state kept in $STATE"; else rm -rf "$STATE"; log "stopped"; fi
}

cmd_status() {
    local name f rc=0 names=(munged slurmctld slurmd)
    [[ -f $STATE/etc/slurmdbd.conf ]] && names+=(mariadbd slurmdbd)
    for name in "${names[@]}"; do
        case $name in munged) f=$STATE/munge/munged.pid ;; mariadbd) f=$STATE/db/mariadbd.pid ;; *) f=$STATE/run/$name.pid ;; esac
        if pid_alive "$f"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: not running"; rc=1; fi
    done
    [[ $rc == 0 ]] && timeout 5 sinfo -N -o '%N %T %c %m %P'
    return $rc
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
