#!/usr/bin/env bash
# The quick start: the seed 000 story ("partner-routing") played with the demo directory of
# deskmail.example.toml, on embedded defaults: an SQLite file under ./data, mails in as files
# (data/inbox, as a mail client's replies would arrive), notifications out into the spool
# directory data/spool. The customer and the partner act by mail; the agent on the command line.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "Building deskmail (the first build takes several minutes; cargo shows its progress)..."
cargo build --locked
deskmail() { ./target/debug/deskmail --config deskmail.example.toml "$@"; }
say() { printf '\n$ deskmail %s\n' "$*"; }
mkdir -p data/inbox
n=0

# The newest notification to $1 in the spool: its reply address and Message-ID.
reply_to() {
    deskmail outbox send >/dev/null
    local f
    f=$(grep -l "^To: .*$1" $(ls -t data/spool/*.eml) | head -n 1)
    token=$(grep -o 'support+r-[a-z0-9-]*@helpdesk\.example' "$f" | head -n 1)
    parent=$(grep -m 1 '^Message-ID:' "$f" | cut -d' ' -f2)
}

# A mail from $1 with subject $2 and text $3 (as a reply to $parent at $token when set).
mail() {
    n=$((n + 1))
    local file="data/inbox/$n.eml"
    {
        # The envelope sender, as the MTA that delivers a mail records it.
        echo "Return-Path: <$(echo "$1" | sed 's/.*<\(.*\)>.*/\1/')>"
        echo "From: $1"
        echo "To: ${token:-support@helpdesk.example}"
        echo "Subject: $2"
        echo "Message-ID: <quickstart-$n-$$-$(date +%s)@example>"
        [ -n "${parent:-}" ] && echo "In-Reply-To: $parent"
        echo "Date: $(date -R)"
        echo
        echo "$3"
        echo
        echo "-- "
        echo "Sent from the quick start"
    } >"$file"
    say ingest "$file" "($1: $2)"
    deskmail ingest "$file"
}

say check-config
deskmail check-config

token='' parent=''
mail anna@acme.example "Printer on fire" "The office printer is smoking."
ref=$(deskmail ticket list --json | grep -o '"ref": *"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')

say ticket act "$ref" --as alice@helpdesk.example --action "To IT Provider" ...
deskmail ticket act "$ref" --as alice@helpdesk.example --action "To IT Provider" \
    --comment "Please check the printer's power supply." >/dev/null

reply_to support@itprov.example
mail ops@itprov.example "[To Customer] Re: [$ref] Printer on fire" "Is it still plugged in?"

reply_to anna@acme.example
mail anna@acme.example "Re: [$ref] Printer on fire" "Yes, and it still smokes."
mail anna@acme.example "[To Web-IT Provider] Re: [$ref] Printer on fire" \
    "Maybe the web people know? (refused: Web-IT Provider is not involved; the comment is kept)"

say ticket act "$ref" --as alice@helpdesk.example --action Resolve ...
deskmail ticket act "$ref" --as alice@helpdesk.example --action Resolve --comment "Replaced the fuse." >/dev/null

reply_to anna@acme.example
mail anna@acme.example "[Reopen] Re: [$ref] Printer on fire" "It smokes again."

say ticket show "$ref" --as ben@acme.example
deskmail ticket show "$ref" --as ben@acme.example

say ticket show "$ref" --as carl@globex.example "(refused: another organisation)"
deskmail ticket show "$ref" --as carl@globex.example || true

say inbound list
deskmail inbound list

say outbox send "(no SMTP configured: into the spool directory data/spool)"
deskmail outbox send

say outbox list
deskmail outbox list
echo
echo "The notifications are in data/spool/*.eml; open one in a mail client to see the action links."
echo "The mails taken in are in data/inbox/; try: deskmail --config deskmail.example.toml ingest --dry-run --json data/inbox/2.eml"
