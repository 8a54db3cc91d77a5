#!/usr/bin/env python3
"""Which of a store's b-trees the replies to its tickets write, page by page.

Usage: benches/pages_changed.py STORE_DIR spread|recent [MAILS] [-- INGEST_ARGS...]

STORE_DIR is a store the scale benchmark left (DESKMAIL_BENCH_KEEP=1; its `big` directory,
with deskmail.sqlite, deskmail.toml and reply.key). A copy of it takes MAILS replies (500)
through `deskmail ingest` (target/release/deskmail): to tickets spread over the whole store,
or to the newest ones. The copy is checkpointed, and each 8 KiB page that differs from before
is counted under the table or index it belongs to (SQLite's dbstat).
"""
import collections
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile

PAGE = 8192


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        extra = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
    store, mode = args[0], args[1]
    mails = int(args[2]) if len(args) > 2 else 500
    binary = os.path.join(os.path.dirname(__file__), "..", "target", "release", "deskmail")
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(store))) as work:
        for f in ("deskmail.sqlite", "reply.key"):
            shutil.copy(os.path.join(store, f), work)
        with open(os.path.join(store, "deskmail.toml")) as f:
            config = f.read().replace(os.path.abspath(store), work)
        with open(os.path.join(work, "deskmail.toml"), "w") as f:
            f.write(config)
        db_path = os.path.join(work, "deskmail.sqlite")
        db = sqlite3.connect(db_path)
        newest = db.execute("SELECT MAX(id) FROM tickets").fetchone()[0]
        rng = random.Random(5)
        if mode == "spread":
            ids = [rng.randint(1, newest) for _ in range(mails)]
        else:
            ids = [newest - k for k in range(mails)]
        tickets = [
            db.execute("SELECT ref, requester FROM tickets WHERE id = ?", (i,)).fetchone()
            for i in ids
        ]
        db.close()
        shutil.copy(db_path, os.path.join(work, "before.sqlite"))
        maildir = os.path.join(work, "Maildir")
        for d in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(maildir, d))
        for k, (ref, requester) in enumerate(t for t in tickets if t):
            with open(os.path.join(maildir, "new", f"{k:06}.eml"), "w") as f:
                f.write(
                    f"From: {requester}\r\nTo: support@helpdesk.example\r\n"
                    f"Subject: Re: [{ref}] Printer\r\nMessage-ID: <pages-{k}-{ref}@bench.example>\r\n"
                    "Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\nStill broken, sorry.\r\n"
                )
        config_path = os.path.join(work, "deskmail.toml")
        subprocess.run(
            [binary, "--config", config_path, "ingest", *extra, maildir],
            check=True,
            capture_output=True,
        )
        db = sqlite3.connect(db_path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        owner = dict((page, name) for name, page in db.execute("SELECT name, pageno FROM dbstat"))
        db.close()
        changed = collections.Counter()
        with open(os.path.join(work, "before.sqlite"), "rb") as a, open(db_path, "rb") as b:
            page = 1
            while True:
                old, new = a.read(PAGE), b.read(PAGE)
                if not new:
                    break
                if old != new:
                    changed[owner.get(page, "(free or new)")] += 1
                page += 1
    total = sum(changed.values())
    print(f"{mode}, {mails} replies: {total} pages changed, {total / mails:.2f} per reply")
    for name, n in changed.most_common():
        if n / mails >= 0.05:
            print(f"  {name:36} {n / mails:.2f}")


if __name__ == "__main__":
    main()
