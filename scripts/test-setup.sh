#!/usr/bin/env bash
# Installs and starts what deskmail's tests need, from Debian's packages, where it is missing:
# - Postfix and Dovecot (IMAP, LMTP) and openssl: the tests start their own throw-away instances
#   on 127.0.0.1 (tests/mailstack/start.sh); the system's own mail services are not started here;
#   GNU time, with which the inbound benchmark measures a process's peak memory;
# - a PostgreSQL answering on 127.0.0.1:5432 with trust auth for the user postgres.
# Safe to run again: it changes nothing that already works. Run as root (or with sudo).
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=5432
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pg_answers() {
    command -v psql >/dev/null 2>&1 &&
        psql "postgres://postgres@$PGHOST:$PGPORT/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1
}

mail_missing=
for bin in /usr/sbin/postfix /usr/sbin/dovecot /usr/lib/dovecot/lmtp /usr/lib/dovecot/imap /usr/bin/openssl /usr/bin/time; do
    [ -x "$bin" ] || mail_missing=1
done
if [ -n "$mail_missing" ]; then
    echo "test-setup: installing Postfix, Dovecot and openssl from Debian's packages"
    # Keep the packages from starting the system's own Postfix and Dovecot: the tests run
    # their own instances. A policy-rc.d that says "no" is the Debian way.
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix dovecot-imapd dovecot-lmtpd openssl time
    [ -n "$made_policy" ] && as_root rm -f /usr/sbin/policy-rc.d
fi
echo "test-setup: Postfix $(postconf -h mail_version 2>/dev/null), $(dovecot --version 2>/dev/null | sed 's/^/Dovecot /')"

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
