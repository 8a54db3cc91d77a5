#!/usr/bin/env bash
# Installs and starts what deskmail's tests need, from Debian's packages, where it is missing:
# - Postfix and Dovecot (IMAP, LMTP) and openssl: the tests start their own throw-away instances
#   on 127.0.0.1 (tests/mailstack/start.sh, with a configuration of their own). The system's
#   own Postfix and Dovecot that this script installs are only there for their programs: Postfix
#   is installed with "No configuration" (no main.cf, nothing listening), and both are disabled
#   at boot and stopped. Mail packages that were on the machine before are left as they are;
#   GNU time, with which the inbound benchmark measures a process's peak memory;
# - promtool (Debian's prometheus package, its service off), which checks the alerting rules;
# - for the Debian package's test (tests/package.rs): cargo-deb (a pinned version, built by
#   `cargo install` into ~/.cargo/bin), which scripts/build-deb.sh runs, dpkg-dev (its
#   dpkg-shlibdeps finds the libraries the binary needs) and man-db (`man deskmail`);
# - a PostgreSQL answering on 127.0.0.1:5432 with trust auth for the user postgres.
# Safe to run again: it changes nothing that already works, and it repairs what an earlier
# version left (the system's Postfix set up as "Internet Site" on every interface, and both
# services enabled at boot). Run as root (or with sudo).
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=5432
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pg_answers() {
    command -v psql >/dev/null 2>&1 &&
        psql "postgres://postgres@$PGHOST:$PGPORT/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1
}

# The mail packages this script installed, one per line (postfix, dovecot-core); only their
# system services are switched off.
MARKER=/var/lib/deskmail-test-setup/installed
MAIL_PACKAGES="postfix dovecot-imapd dovecot-lmtpd openssl time"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# True when this script installed package $1: its marker says so, or apt's history shows the
# install command of an earlier version of this script (which left no marker) installing it.
ours() {
    grep -qx "$1" "$MARKER" 2>/dev/null && return 0
    local log
    for log in /var/log/apt/history.log /var/log/apt/history.log.*.gz; do
        [ -e "$log" ] || continue
        { case $log in *.gz) zcat -- "$log" ;; *) cat -- "$log" ;; esac; } 2>/dev/null |
            awk -v cmd="Commandline: apt-get install -y -q $MAIL_PACKAGES" -v pkg=" $1:" '
                /^Start-Date:/ { this = 0 }
                $0 == cmd { this = 1 }
                this && /^Install:/ && index($0, pkg) { found = 1 }
                END { exit !found }' && return 0
    done
    return 1
}

# `apt-get install ARGS` without starting the services the packages bring: a policy-rc.d that
# says "no" is the Debian way (one the admin put there is left alone).
install_without_starting() {
    local made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install "$@"
    if [ -n "$made_policy" ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
}

remember() { as_root mkdir -p "$(dirname "$MARKER")"; echo "$1" | as_root tee -a "$MARKER" >/dev/null; }

# Whether unit $1 (postfix, dovecot, dovecot.socket) starts at boot: systemd's view (which also
# answers without a running systemd) or, for an init script, its S links.
enabled_at_boot() {
    if command -v systemctl >/dev/null 2>&1; then
        [ "$(systemctl is-enabled "$1" 2>/dev/null)" = enabled ] && return 0
    fi
    case $1 in *.*) return 1 ;; esac
    ls /etc/rc[2-5].d/S[0-9][0-9]"$1" >/dev/null 2>&1
}

# Disables unit $1 at boot, saying how. `systemctl disable` works without a running systemd
# (and also takes an init script's links away); update-rc.d where it cannot.
disable_at_boot() {
    enabled_at_boot "$1" || return 0
    local how=
    if command -v systemctl >/dev/null 2>&1 && as_root systemctl disable --quiet "$1" 2>/dev/null; then
        how="systemctl disable $1"
    fi
    case $1 in
    *.*) ;;
    *) if enabled_at_boot "$1"; then
        as_root update-rc.d "$1" disable >/dev/null
        how="${how:+$how, }update-rc.d $1 disable"
    fi ;;
    esac
    echo "test-setup: disabled the system's $1 at boot ($how)"
}

# Stops the system's service $1 if its master (pid file $2) runs; the tests' own instances keep
# their pid files in their own directories.
stop_running() {
    local pid
    pid=$(awk '{print $1; exit}' "$2" 2>/dev/null || true)
    [ -n "$pid" ] && as_root kill -0 "$pid" 2>/dev/null || return 0
    as_root service "$1" stop >/dev/null 2>&1 || as_root "/etc/init.d/$1" stop >/dev/null
    echo "test-setup: stopped the system's $1 (pid $pid)"
}

mail_missing=
for bin in /usr/sbin/postfix /usr/sbin/dovecot /usr/lib/dovecot/lmtp /usr/lib/dovecot/imap /usr/bin/openssl /usr/bin/time; do
    [ -x "$bin" ] || mail_missing=1
done
if [ -n "$mail_missing" ]; then
    echo "test-setup: installing Postfix, Dovecot and openssl from Debian's packages"
    new=
    for pkg in postfix dovecot-core; do installed "$pkg" || new="$new $pkg"; done
    # Postfix without a configuration of its own: no main.cf, so it could not even start.
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
    # Keep the packages from starting the system's own Postfix and Dovecot: the tests run
    # their own instances.
    # shellcheck disable=SC2086 # one word per package
    install_without_starting -y -q $MAIL_PACKAGES
    for pkg in $new; do remember "$pkg"; done
fi

# The system's services of the mail packages installed here: never started at boot, not
# running. Checked on every run, so that a machine set up by an earlier version is repaired.
if ours postfix; then
    grep -qx postfix "$MARKER" 2>/dev/null || remember postfix
    disable_at_boot postfix
    stop_running postfix /var/spool/postfix/pid/master.pid
    if [ "$(debconf-show postfix 2>/dev/null | sed -n 's/^[* ] postfix\/main_mailer_type: //p')" != "No configuration" ]; then
        echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
        echo "test-setup: the system's Postfix is set to \"No configuration\" (package upgrades leave it unconfigured)"
    fi
    # A main.cf an earlier version had the package write ("Internet Site"): loopback only.
    if [ -f /etc/postfix/main.cf ] && [ "$(postconf -h inet_interfaces 2>/dev/null)" != loopback-only ]; then
        as_root postconf -e inet_interfaces=loopback-only
        echo "test-setup: the system's Postfix would listen on loopback only (inet_interfaces = loopback-only in /etc/postfix/main.cf)"
    fi
fi
if ours dovecot-core; then
    grep -qx dovecot-core "$MARKER" 2>/dev/null || remember dovecot-core
    disable_at_boot dovecot
    disable_at_boot dovecot.socket
    stop_running dovecot /run/dovecot/master.pid
fi
if ours postfix || ours dovecot-core; then
    echo "test-setup: the system's own Postfix and Dovecot are off at boot and not running (the tests start their own)"
fi
echo "test-setup: Postfix $(postconf -d -h mail_version 2>/dev/null), $(dovecot --version 2>/dev/null | sed 's/^/Dovecot /')"

# promtool, from Debian's prometheus package: the tests check the alerting rules in
# monitoring/ with it. The system's Prometheus that comes with it is never started: the
# package is kept from starting it (policy-rc.d), and it is disabled at boot.
if ! command -v promtool >/dev/null 2>&1; then
    echo "test-setup: installing promtool (Debian's prometheus package; its service stays off)"
    new=
    installed prometheus || new=prometheus
    install_without_starting -y -q --no-install-recommends prometheus
    if [ -n "$new" ]; then remember prometheus; fi
fi
if grep -qx prometheus "$MARKER" 2>/dev/null; then
    disable_at_boot prometheus
    # Read off /proc: pgrep's procps may not be installed.
    if grep -qx prometheus /proc/[0-9]*/comm 2>/dev/null; then
        as_root service prometheus stop >/dev/null 2>&1 || true
        echo "test-setup: stopped the system's Prometheus"
    fi
fi
echo "test-setup: $(promtool --version 2>&1 | head -n 1)"

# What the Debian package's test needs: scripts/build-deb.sh runs cargo-deb, and cargo-deb runs
# dpkg-shlibdeps (dpkg-dev); the test reads the installed man page with man (man-db).
CARGO_DEB_VERSION=3.8.0
deb_tools_missing=
for bin in /usr/bin/dpkg-shlibdeps /usr/bin/man; do
    [ -x "$bin" ] || deb_tools_missing=1
done
if [ -n "$deb_tools_missing" ]; then
    echo "test-setup: installing dpkg-dev and man-db from Debian's packages"
    install_without_starting -y -q --no-install-recommends dpkg-dev man-db
fi
if ! cargo deb --version >/dev/null 2>&1; then
    echo "test-setup: installing cargo-deb $CARGO_DEB_VERSION (cargo install, into ~/.cargo/bin)"
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
echo "test-setup: $(cargo deb --version 2>&1 | head -n 1)"

if pg_answers; then
    echo "test-setup: PostgreSQL answers on $PGHOST:$PGPORT"
    exit 0
fi

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "test-setup: installing PostgreSQL from Debian's packages"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql postgresql-client
fi

version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    as_root pg_createcluster "$version" main
fi
conf=/etc/postgresql/$version/main

# Listen on loopback and trust local test connections (a throw-away test server only).
if ! grep -q "^listen_addresses" "$conf/postgresql.conf"; then
    echo "listen_addresses = '127.0.0.1'" | as_root tee -a "$conf/postgresql.conf" >/dev/null
fi
if ! grep -qE "^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust" "$conf/pg_hba.conf"; then
    tmp=$(mktemp)
    { echo "host all all 127.0.0.1/32 trust"; echo "host all all ::1/128 trust"; as_root cat "$conf/pg_hba.conf"; } >"$tmp"
    as_root cp "$tmp" "$conf/pg_hba.conf"
    rm -f "$tmp"
fi

echo "test-setup: starting PostgreSQL $version"
as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null ||
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload

for _ in $(seq 1 30); do
    if pg_answers; then
        echo "test-setup: PostgreSQL answers on $PGHOST:$PGPORT"
        exit 0
    fi
    sleep 1
done
echo "test-setup: PostgreSQL does not answer on $PGHOST:$PGPORT; see /var/log/postgresql/" >&2
exit 1
