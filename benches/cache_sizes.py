#!/usr/bin/env python3
"""Replies spread over a big store with each page cache size (`store.cache_mib`), taking turns.

Usage: benches/cache_sizes.py STORE_DIR [SIZES] [ROUNDS]

STORE_DIR is a store the scale benchmark left (DESKMAIL_BENCH_KEEP=1; its `big` directory).
SIZES are MiB, comma-separated (4,16,64); ROUNDS how often each is run (4). Each round, every
size takes 2,000 replies to tickets spread over the whole store with one commit per mail
(`--batch 1`, as the daemon takes them) and then 4,000 grouped, each in its own
`deskmail ingest` (target/release/deskmail) under GNU time. The replies stay in the store.
Prints the medians of mails per second and of peak memory per size.
"""
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

ONE_BY_ONE, GROUPED = 2000, 4000


def configs(store, sizes):
    with open(os.path.join(store, "deskmail.toml")) as f:
        lines = [l for l in f.read().split("\n") if not l.startswith("cache_mib")]
    at = next(i for i, l in enumerate(lines) if l.startswith('url = "sqlite://'))
    out = {}
    for size in sizes:
        path = os.path.join(store, f"deskmail-cache-{size}.toml")
        with open(path, "w") as f:
            f.write("\n".join(lines[: at + 1] + [f"cache_mib = {size}"] + lines[at + 1 :]))
        out[size] = path
    return out


def maildir(store, count, rng, sent):
    db = sqlite3.connect(os.path.join(store, "deskmail.sqlite"))
    newest = db.execute("SELECT MAX(id) FROM tickets").fetchone()[0]
    tickets = [
        db.execute("SELECT ref, requester FROM tickets WHERE id = ?", (rng.randint(1, newest),)).fetchone()
        for _ in range(count)
    ]
    db.close()
    path = os.path.join(store, "Maildir")
    shutil.rmtree(path, ignore_errors=True)
    for d in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, d))
    made = 0
    for ref, requester in (t for t in tickets if t):
        sent += 1
        made += 1
        with open(os.path.join(path, "new", f"{sent:08}.eml"), "w") as f:
            f.write(
                f"From: {requester}\r\nTo: support@helpdesk.example\r\n"
                f"Subject: Re: [{ref}] Printer\r\nMessage-ID: <cache-{sent}-{ref}@bench.example>\r\n"
                "Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\nStill broken, sorry.\r\n"
            )
    os.sync()
    return path, made, sent


def main():
    store = sys.argv[1]
    sizes = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "4,16,64").split(",")]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    binary = os.path.join(os.path.dirname(__file__), "..", "target", "release", "deskmail")
    config = configs(store, sizes)
    rng, sent, runs = random.Random(11), 0, {}
    for r in range(rounds):
        for mode, count, extra in (("one commit per mail", ONE_BY_ONE, ["--batch", "1"]), ("grouped", GROUPED, [])):
            for size in sizes if r % 2 == 0 else sizes[::-1]:
                path, made, sent = maildir(store, count, rng, sent)
                start = time.time()
                done = subprocess.run(
                    ["/usr/bin/time", "-f", "%M", binary, "--config", config[size], "ingest", *extra, path],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                seconds = time.time() - start
                mib = int(done.stderr.strip().split("\n")[-1]) / 1024
                runs.setdefault((mode, size), []).append((made / seconds, mib))
    print("| cache_mib | mode | mails/s | peak MiB |")
    print("|---|---|---|---|")
    for (mode, size), v in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        rate = statistics.median(x[0] for x in v)
        mib = statistics.median(x[1] for x in v)
        print(f"| {size} | {mode} | {rate:.0f} | {mib:.0f} |")


if __name__ == "__main__":
    main()
