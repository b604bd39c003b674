#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the tests that submit batch jobs.
#
# Installs (as root, with apt-get, no recommended packages) Debian's slurmctld, slurmd,
# slurm-client and munge when `sbatch` is missing; writes /etc/slurm/slurm.conf for this host
# (topology from `slurmd -C`, state, spool and logs under $ALPS_SLURM_DIR, no cgroups, no
# accounting); starts munged, slurmctld and slurmd; waits until `sinfo` shows the node idle.
# Idempotent: a cluster that already answers is left as it is. tests/slurm/stop.sh stops it.
set -euo pipefail

SLURM_DIR="${ALPS_SLURM_DIR:-/tmp/alps-slurm}"
CONF=/etc/slurm/slurm.conf
MARK="# written by alps tests/slurm/start.sh"

say() { echo "slurm-start: $*"; }

node_ready() {
    local state
    state="$(sinfo -h -o %t 2>/dev/null | head -n 1 || true)"
    [[ "$state" == idle || "$state" == mix || "$state" == alloc ]]
}

if command -v sinfo >/dev/null && scontrol ping 2>/dev/null | grep -q UP && node_ready; then
    say "already running ($(sinfo -h -o '%n %t %c CPUs %m MB'))"
    exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
    say "needs root to install and start SLURM" >&2
    exit 1
fi

if ! command -v sbatch >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurmctld slurmd slurm-client munge (apt-get, no recommends)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # the packages' service start hooks are refused without an init system: expected
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

if [[ -f "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
    say "$CONF exists and was not written by this script: refusing to replace it" >&2
    exit 1
fi

# --- munge: the authentication daemon every SLURM command talks through
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [[ -f /etc/munge/munge.key ]] || mungekey --create --keyfile /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

# --- slurm.conf for this host
mkdir -p "$SLURM_DIR"/{state,spool,log}
host="$(hostname -s)"
node="$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$host/")"
cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")"
memory="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")"
# leave the operating system some memory; give a job without --mem a share per CPU, not the node
memory=$(( memory * 9 / 10 ))
node="$(sed "s/RealMemory=[0-9]*/RealMemory=$memory/" <<<"$node")"
per_cpu=$(( memory / cpus / 2 ))
cat >"$CONF" <<CONF
$MARK
ClusterName=alps-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$per_cpu
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
KillWait=5
MinJobAge=30
InactiveLimit=0
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# --- the daemons (they detach); a stale one from an earlier conf is restarted
for daemon in slurmctld slurmd; do
    pidfile="$SLURM_DIR/$daemon.pid"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        kill "$(cat "$pidfile")" && sleep 1
    fi
done
/usr/sbin/slurmctld
/usr/sbin/slurmd

for _ in $(seq 120); do
    if node_ready; then
        say "ready: $(sinfo -h -o '%n %t %c CPUs %m MB') in ${SECONDS}s"
        exit 0
    fi
    state="$(sinfo -h -o %t 2>/dev/null | head -n 1 || true)"
    if [[ "$state" == down* || "$state" == drain* ]]; then
        scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 0.5
done
say "node not idle after 60 s: $(sinfo 2>&1 | tail -n 2); logs in $SLURM_DIR/log" >&2
exit 1
