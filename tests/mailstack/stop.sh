#!/bin/sh
# tests/mailstack/stop.sh DIR -- stops the Postfix + Dovecot started by start.sh DIR.
# Leaves DIR (mail, logs) in place; the caller deletes it.
# Never kills anything by name: only the two masters recorded in DIR's pid files.
# Both masters are signalled first and then waited for in parallel (Dovecot's
# master needs ~2.6 s to exit, Postfix's ~1.7 s).
set -u
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$(cd "$1" 2>/dev/null && pwd -P) || { echo "no such dir: $1" >&2; exit 1; }
PF=$DIR/postfix/etc
DC=$DIR/dovecot/dovecot.conf
pids=

# --- Postfix: SIGTERM to the master in $queue_directory/pid/master.pid. That is
# exactly what "postfix -c DIR stop" does, but postfix-script then polls with
# "sleep 1" (and logs to the maillog); polling ourselves is faster.  The master
# takes all its children (smtpd, qmgr, lmtp, postlogd, ...) down with it.
if [ -f "$PF/main.cf" ]; then
    QD=$(postconf -c "$PF" -h queue_directory 2>/dev/null)
    if [ -n "$QD" ] && [ -f "$QD/pid/master.pid" ]; then
        pid=$(awk '{print $1; exit}' "$QD/pid/master.pid")   # file is space-padded
        if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then pids="$pids $pid"; fi
    fi
fi

# --- Dovecot: SIGTERM to the master in base_dir/master.pid ("doveadm -c FILE stop"
# does the same and waits).  The master stops all its children, but sleeps 1 s
# on purpose before exiting (services_monitor_wait_and_kill).
if [ -f "$DC" ]; then
    BD=$(doveconf -c "$DC" -h base_dir 2>/dev/null)
    if [ -n "$BD" ] && [ -f "$BD/master.pid" ]; then
        pid=$(cat "$BD/master.pid")
        if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then pids="$pids $pid"; fi
    fi
fi

rc=0
for pid in $pids; do
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    if kill -0 "$pid" 2>/dev/null; then
        echo "master $pid did not exit in 5 s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null; rc=1
    fi
done

# Short runtime dir used for long DIRs (see start.sh): remove it.
if [ -L "$DIR/dovecot/run" ]; then
    t=$(dirname "$(readlink "$DIR/dovecot/run")")
    case "$t" in /tmp/msrt.*) rm -rf "$t"; rm -f "$DIR/dovecot/run" "$DIR/postfix/spool";; esac
fi
exit $rc
