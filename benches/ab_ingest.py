#!/usr/bin/env python3
"""Two deskmail binaries side by side on the same mails: `deskmail ingest` in alternating rounds.

Usage: benches/ab_ingest.py PREPARED_DIR BIN_A BIN_B [ROUNDS] [-- INGEST_ARGS...]

PREPARED_DIR is what `DESKMAIL_BENCH_PREPARE=DIR cargo bench --bench inbound` leaves: a
config, a store with the benchmark's tickets and a Maildir of replies to them. Each round copies
it twice (the store with its -wal) and lets each binary take the Maildir in, A first in even
rounds and B first in odd ones; `sync` runs before each. ROUNDS is 8 unless given. INGEST_ARGS go
to both (`--batch 1` for one commit per mail).

With DESKMAIL_BENCH_PREPARE_URL set to a PostgreSQL database when preparing, the store is that
database: give its URL as DESKMAIL_AB_PG; each run gets a copy (`CREATE DATABASE ... TEMPLATE`),
dropped after it.

Prints each binary's median rate (mails per second) and the median of B's rate over A's, round
by round.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run(binary, prepared, work, extra, pg):
    """One ingest of the prepared Maildir into a fresh copy; mails per second."""
    shutil.copytree(prepared, work)
    config = os.path.join(work, "deskmail.toml")
    # The store named in the config is the prepared one: each run takes in the mails on a copy.
    url = pg_copy(pg) if pg else "sqlite://" + os.path.join(work, "prepared.sqlite")
    text = open(config).read()
    text, n = re.subn(r'^url = "[^"]*"', f'url = "{url}"', text, flags=re.M)
    assert n == 1, "the config names no store"
    open(config, "w").write(text)
    maildir = os.path.join(work, "Maildir")
    mails = len(os.listdir(os.path.join(maildir, "new")))
    os.sync()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKMAIL")}
    start = time.monotonic()
    done = subprocess.run(
        [binary, "--config", config, "ingest", maildir, *extra],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    took = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"{binary} failed ({done.returncode}): {done.stderr[-2000:].decode()}")
    # Every mail was applied (not refused, not a duplicate of an earlier run).
    applied = done.stderr.decode().count(": applied ")
    if applied != mails:
        sys.exit(f"{binary}: {applied} of {mails} mails applied")
    shutil.rmtree(work)
    if pg:
        pg_drop(url)
    return mails / took


def pg_copy(template_url):
    """A new database copied from the prepared one; its URL."""
    base, name = template_url.rsplit("/", 1)
    copy = f"ab_{os.getpid()}_{time.monotonic_ns()}"
    subprocess.run(
        ["psql", f"{base}/postgres", "-qc", f"CREATE DATABASE {copy} TEMPLATE {name}"],
        check=True,
    )
    return f"{base}/{copy}"


def pg_drop(url):
    """Drops a database `pg_copy` made."""
    base, name = url.rsplit("/", 1)
    subprocess.run(["psql", f"{base}/postgres", "-qc", f"DROP DATABASE {name}"], check=True)


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        extra = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
    prepared, a, b = args[0], os.path.abspath(args[1]), os.path.abspath(args[2])
    rounds = int(args[3]) if len(args) > 3 else 8
    pg = os.environ.get("DESKMAIL_AB_PG")
    rates = {a: [], b: []}
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = (a, b) if r % 2 == 0 else (b, a)
            got = {}
            for binary in order:
                got[binary] = run(binary, prepared, os.path.join(tmp, "work"), extra, pg)
                rates[binary].append(got[binary])
            ratios.append(got[b] / got[a])
            print(f"round {r + 1}: A {got[a]:.0f}/s  B {got[b]:.0f}/s  B/A {ratios[-1]:.3f}")
    print(f"A {a}: median {statistics.median(rates[a]):.0f} mails/s")
    print(f"B {b}: median {statistics.median(rates[b]):.0f} mails/s")
    print(f"B/A: median {statistics.median(ratios):.3f} over {rounds} rounds")


if __name__ == "__main__":
    main()
