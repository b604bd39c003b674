#!/usr/bin/env bash
# Stops what tests/slurm/start.sh started (slurmd, slurmctld; munged with --munge) and cancels
# every job left in the queue. The packages and /etc/slurm/slurm.conf stay.
set -uo pipefail

SLURM_DIR="${ALPS_SLURM_DIR:-/tmp/alps-slurm}"

command -v scancel >/dev/null && scancel --full --quiet --user="$(id -un)" 2>/dev/null
for daemon in slurmd slurmctld; do
    pidfile="$SLURM_DIR/$daemon.pid"
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
done
if [[ "${1:-}" == --munge && -f /run/munge/munged.pid ]]; then
    kill "$(cat /run/munge/munged.pid)" 2>/dev/null
fi
echo "slurm-stop: stopped"
