#!/usr/bin/env bash
# `make down`: stop the local tree, every process and the supervisor that keeps them running, and
# wait until they are gone, so that a `make up` straight after finds the ports free. Does nothing
# (quietly) when the tree is not running.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
RUN=var/run
CONF=$RUN/supervisord.conf
PIDFILE=$RUN/supervisord.pid

# Only a pid that is still this tree's supervisord: a stale file's pid may belong to anything now.
ours() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q supervisord; }

if [ -f "$PIDFILE" ]; then
  pid=$(cat "$PIDFILE")
  if ours "$pid"; then
    # shutdown stops every process (SIGTERM, SIGKILL after stopwaitsecs) before supervisord exits;
    # SIGTERM to supervisord does the same if its socket does not answer.
    "$BIN/supervisorctl" -c "$CONF" shutdown >/dev/null 2>&1 || kill -TERM "$pid"
    for _ in $(seq 1 80); do ours "$pid" || break; sleep 0.5; done
    if ours "$pid"; then
      echo "supervisord (pid $pid) is still stopping its processes after 40 s; see var/log/supervisord.log" >&2
      exit 1
    fi
    echo "stopped"
  fi
  rm -f "$PIDFILE"
fi

# A tree started by an older checkout, under honcho.
if [ -f "$RUN/honcho.pid" ]; then
  kill "$(cat "$RUN/honcho.pid")" 2>/dev/null && echo "stopped"
  rm -f "$RUN/honcho.pid"
fi
exit 0
