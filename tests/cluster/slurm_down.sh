#!/usr/bin/env bash
# Stop the single-node SLURM started by slurm_up.sh (slurmd, slurmctld; munged when we started it).
# Leaves the installed packages; removes the config it wrote and its state directory.
# Safe to run when nothing is up.
set -uo pipefail

STATE="${CELLSYNTH_SLURM_DIR:-/tmp/cellsynth-slurm}"
CONF_DIR=/etc/slurm
MARK="# cellsynth test cluster"

say() { echo "slurm_down: $*" >&2; }

stop() {  # stop the daemon whose pid file is $1, waiting up to 10 s before SIGKILL
    local pidfile="$1" pid
    [[ -f "$pidfile" ]] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $(basename "$pidfile" .pid) ($pid)"
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
}

if [[ -f "$CONF_DIR/slurm.conf" ]] && head -n1 "$CONF_DIR/slurm.conf" | grep -qF "$MARK"; then
    timeout 10 scancel --state=PENDING,RUNNING --user="$(id -un)" >/dev/null 2>&1 || true
    stop "$STATE/slurmd.pid"
    stop "$STATE/slurmctld.pid"
    stop /run/munge/munged.pid
    rm -f "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"
    rm -rf "$STATE"
    say "down"
else
    say "no cellsynth test cluster configured here; nothing to do"
fi
