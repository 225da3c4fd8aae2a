#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for the `slurm` executor's tests (CI and
# development). Debian's slurmctld + slurmd + munge, no systemd, no accounting daemon.
#
#   .ci/slurm.sh start    install the packages when missing, configure, start munged, slurmctld and
#                         slurmd, wait until the node takes jobs (idempotent: a running cluster is
#                         reused as it is, whoever started it)
#   .ci/slurm.sh status   daemons and `sinfo`
#   .ci/slurm.sh stop     cancel this cluster's jobs, stop the daemons this script started (by pid file)
#
# Environment: UEBENCH_SLURM_DIR (state, spool, logs, pid files; default /tmp/uebench-slurm),
# UEBENCH_SLURM_CPUS (CPUs the node advertises; default nproc), UEBENCH_SLURM_TIMEOUT (seconds to
# wait for the node; default 90).
#
# No `sacct` stand-in is installed: without slurmdbd, sacct has nothing to say, and uebench's
# executor never asks it (it follows its jobs with `squeue`, see benchmark/executors/slurm.py).
# `DependencyParameters=kill_invalid_depend` cancels the cells of an attack job that failed
# instead of leaving them pending forever (the executor also asks for it per job).
set -euo pipefail

DIR=${UEBENCH_SLURM_DIR:-/tmp/uebench-slurm}
CPUS=${UEBENCH_SLURM_CPUS:-$(nproc)}
TIMEOUT=${UEBENCH_SLURM_TIMEOUT:-90}
CONF=/etc/slurm/slurm.conf
MUNGE_PID=/run/munge/munged.pid
HOST=$(hostname -s)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

say() { printf '[slurm.sh] %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }

# alive PIDFILE COMM: the pid file names a running process called COMM
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ]
}

node_state() { sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -n1; }

# A cluster that answers and has a node taking jobs: use it as it is.
answering() {
  command -v sinfo >/dev/null || return 1
  case "$(node_state)" in idle*|mixed*|allocated*|completing*) return 0 ;; esac
  return 1
}

install_packages() {
  local need=0 c
  for c in slurmctld slurmd sbatch squeue munged; do command -v "$c" >/dev/null || need=1; done
  [ "$need" = 0 ] && return 0
  command -v apt-get >/dev/null || fail "SLURM is not installed and there is no apt-get to install it"
  say "installing slurmctld slurmd slurm-client munge"
  # no init system here: keep the packages' scripts from starting services
  local policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 0755 /usr/sbin/policy-rc.d
    policy=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
  [ "$policy" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
  return 0
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    $SUDO mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
      || $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  $SUDO chown munge:munge /etc/munge/munge.key
  $SUDO chmod 0400 /etc/munge/munge.key
  $SUDO mkdir -p /run/munge /var/lib/munge /var/log/munge
  $SUDO chown munge:munge /run/munge /var/lib/munge /var/log/munge
  $SUDO chmod 0755 /run/munge
  if ! alive "$MUNGE_PID" munged; then
    say "starting munged"
    $SUDO rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock "$MUNGE_PID"
    $SUDO runuser -u munge -- /usr/sbin/munged
  fi
  munge -n | unmunge >/dev/null || fail "munge does not work (see /var/log/munge/munged.log)"
}

write_conf() {
  # a little under the machine's memory, so slurmd never finds less than configured
  local mem tmp
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  $SUDO mkdir -p "$DIR/state" "$DIR/spool" /etc/slurm
  tmp=$(mktemp)
  cat > "$tmp" <<EOF
# written by uebench .ci/slurm.sh: one node on localhost; no accounting, no cgroups
ClusterName=uebench
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
DependencyParameters=kill_invalid_depend
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
# finished jobs stay visible to squeue for 30 min (the executor and bench status read their states)
MinJobAge=1800
KillWait=5
Waittime=0
MailProg=/bin/true
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if ! cmp -s "$tmp" "$CONF"; then
    if alive "$DIR/slurmctld.pid" slurmctld || alive "$DIR/slurmd.pid" slurmd; then
      say "slurm.conf changed: restarting the daemons"
      stop_pid "$DIR/slurmd.pid" slurmd
      stop_pid "$DIR/slurmctld.pid" slurmctld
    fi
    $SUDO install -m 0644 "$tmp" "$CONF"
    say "wrote $CONF (node $HOST, $CPUS CPUs, ${mem} MB)"
  fi
  rm -f "$tmp"
}

stop_pid() {
  local pf=$1 name=$2 pid i
  alive "$pf" "$name" || { $SUDO rm -f "$pf"; return 0; }
  pid=$(cat "$pf")
  say "stopping $name (pid $pid)"
  $SUDO kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 30); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
  [ -d "/proc/$pid" ] && $SUDO kill -KILL "$pid" 2>/dev/null
  $SUDO rm -f "$pf"
}

start_daemons() {
  alive "$DIR/slurmctld.pid" slurmctld || { say "starting slurmctld"; $SUDO slurmctld; }
  alive "$DIR/slurmd.pid" slurmd || { say "starting slurmd"; $SUDO slurmd; }
  local t0=$SECONDS st
  while :; do
    st=$(node_state || true)
    case "$st" in
      idle*|mixed*|allocated*) break ;;
      drain*|down*) $SUDO scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    if [ $((SECONDS - t0)) -ge "$TIMEOUT" ]; then
      tail -n 20 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 2>/dev/null || true
      fail "node $HOST does not take jobs after ${TIMEOUT}s (state '${st:-none}')"
    fi
    sleep 0.5
  done
  if [ "$st" = idle ]; then  # a job really runs (on a busy node srun would queue behind others)
    srun --immediate=30 -t 1 -N1 -n1 true || fail "srun true failed (see $DIR/slurmd.log)"
  fi
  say "node $HOST is $st"
}

case "${1:-start}" in
  start)
    if answering; then
      say "a cluster already answers (node $HOST $(node_state)): using it"
    else
      install_packages
      start_munge
      write_conf
      start_daemons
    fi
    sinfo >&2
    ;;
  status)
    for n in munged slurmctld slurmd; do
      case $n in munged) pf=$MUNGE_PID ;; *) pf=$DIR/$n.pid ;; esac
      if alive "$pf" "$n"; then echo "$n: running (pid $(cat "$pf"))"; else echo "$n: not running"; fi
    done
    sinfo 2>&1 || true
    ;;
  stop)
    if alive "$DIR/slurmctld.pid" slurmctld; then $SUDO scancel --user="$(id -un)" 2>/dev/null || true; sleep 1; fi
    stop_pid "$DIR/slurmd.pid" slurmd
    stop_pid "$DIR/slurmctld.pid" slurmctld
    stop_pid "$MUNGE_PID" munged
    ;;
  *) echo "usage: $0 [start|status|stop]" >&2; exit 2 ;;
esac
