#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine for the cluster tests (pytest -m cluster).
#
# Idempotent and quick when the cluster is already up; every wait has a timeout.
# Installs slurm-wlm and munge with apt when missing, writes /etc/slurm/{slurm,gres}.conf from
# the templates beside this script (never over a config it did not write), starts munged,
# slurmctld and slurmd, and waits until `sinfo` shows the node idle.
#
# Exit status: 0 the cluster is up; 2 this machine cannot run it (not root, no apt, a foreign
# SLURM config): the cluster tests then skip; 1 anything else went wrong (see the daemon logs
# under $CELLSYNTH_SLURM_DIR/log).
#
# Environment: CELLSYNTH_SLURM_DIR (state, spool and logs; default /tmp/cellsynth-slurm),
# CELLSYNTH_SLURM_CPUS (default 16), CELLSYNTH_SLURM_MEM_MB (default 64000): the node's declared
# size, which must cover the largest request in profiles/slurm.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${CELLSYNTH_SLURM_DIR:-/tmp/cellsynth-slurm}"
CPUS="${CELLSYNTH_SLURM_CPUS:-16}"
MEM_MB="${CELLSYNTH_SLURM_MEM_MB:-64000}"
CONF_DIR=/etc/slurm
MARK="# cellsynth test cluster"
HOST="$(hostname -s)"

say() { echo "slurm_up: $*" >&2; }
cannot() { say "cannot run a local SLURM here: $*"; exit 2; }

node_state() { timeout 10 sinfo -h -N -n "$HOST" -o %T 2>/dev/null | head -n1 || true; }
ours() { [[ -f "$CONF_DIR/slurm.conf" ]] && head -n1 "$CONF_DIR/slurm.conf" | grep -qF "$MARK"; }
running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

fill() {
    sed -e "s|@HOST@|$HOST|g" -e "s|@STATE@|$STATE|g" -e "s|@CPUS@|$CPUS|g" \
        -e "s|@MEM_MB@|$MEM_MB|g" "$1"
}
same_config() {
    local name
    for name in slurm.conf gres.conf; do
        cmp -s <(fill "$HERE/$name.in") "$CONF_DIR/$name" || return 1
    done
}

# Quick path: already up with this config.
if command -v sinfo >/dev/null && ours && same_config \
    && [[ "$(node_state)" =~ ^(idle|mixed|allocated) ]]; then
    say "already up ($HOST: $(node_state))"
    exit 0
fi

[[ "$(id -u)" -eq 0 ]] || cannot "needs root (daemons and /etc/slurm)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    command -v apt-get >/dev/null || cannot "slurm-wlm is not installed and there is no apt-get"
    say "installing slurm-wlm and munge with apt"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >/dev/null || cannot "apt-get update failed"
    timeout 600 apt-get install -y -qq slurm-wlm munge >/dev/null \
        || cannot "apt-get install slurm-wlm munge failed"
fi

if [[ -f "$CONF_DIR/slurm.conf" ]] && ! ours; then
    cannot "$CONF_DIR/slurm.conf exists and was not written by this script (a real cluster?)"
fi

mkdir -p "$STATE"/{ctld,slurmd,log} "$CONF_DIR"
: > "$STATE/fake-gpu0"
# Rewrite the config only when it changed, so running daemons keep a config equal to the file.
changed=0
for name in slurm.conf gres.conf; do
    fill "$HERE/$name.in" > "$STATE/$name.new"
    if ! cmp -s "$STATE/$name.new" "$CONF_DIR/$name"; then
        mv "$STATE/$name.new" "$CONF_DIR/$name"
        changed=1
    else
        rm -f "$STATE/$name.new"
    fi
done

# munge: a key, its run directory, the daemon (as user munge).
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating a munge key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
if ! timeout 5 bash -c 'munge -n | unmunge' >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 50); do
        timeout 5 bash -c 'munge -n | unmunge' >/dev/null 2>&1 && break
        sleep 0.2
    done
    timeout 5 bash -c 'munge -n | unmunge' >/dev/null 2>&1 || { say "munged did not start"; exit 1; }
fi

# A changed config needs the daemons restarted; stop the ones we started before.
if [[ "$changed" -eq 1 ]]; then
    for d in slurmd slurmctld; do
        if running "$STATE/$d.pid"; then
            say "config changed: restarting $d"
            kill "$(cat "$STATE/$d.pid")"
            for _ in $(seq 50); do running "$STATE/$d.pid" || break; sleep 0.2; done
        fi
    done
fi

if ! running "$STATE/slurmctld.pid"; then
    say "starting slurmctld"
    /usr/sbin/slurmctld
fi
if ! running "$STATE/slurmd.pid"; then
    say "starting slurmd"
    /usr/sbin/slurmd -N "$HOST"
fi

# Wait for the node; a node left down or drained by an earlier run is put back into service.
for i in $(seq 60); do
    state="$(node_state)"
    if [[ "$state" =~ ^(idle|mixed|allocated)$ ]]; then
        say "up ($HOST: $state)"
        exit 0
    fi
    if [[ "$state" =~ ^(down|drain|drained|draining) ]] && (( i % 5 == 0 )); then
        timeout 10 scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    fi
    sleep 1
done
say "node $HOST not idle after 60 s (state: '$(node_state)'); logs in $STATE/log"
exit 1
