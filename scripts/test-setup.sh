#!/usr/bin/env bash
# Installs and starts what deskmail's tests need, from Debian's packages, where it is missing:
# a PostgreSQL answering on 127.0.0.1:5432 with trust auth for the user postgres.
# Safe to run again: it changes nothing that already works. Run as root (or with sudo).
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=5432
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pg_answers() {
    command -v psql >/dev/null 2>&1 &&
        psql "postgres://postgres@$PGHOST:$PGPORT/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1
}

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
