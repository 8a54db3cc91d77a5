#!/usr/bin/env bash
# The quick start: the seed 000 story ("partner-routing") played with the demo directory of
# deskmail.example.toml, on embedded defaults (an SQLite file under ./data, notifications into
# the spool directory data/spool).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -q
deskmail() { ./target/debug/deskmail --config deskmail.example.toml "$@"; }
say() { printf '\n$ deskmail %s\n' "$*"; }

say check-config
deskmail check-config

say ticket create --as anna@acme.example --subject "Printer on fire" ...
ref=$(deskmail ticket create --as anna@acme.example --subject "Printer on fire" \
    --text "The office printer is smoking.")

say ticket act "$ref" --as alice@helpdesk.example --action "To IT Provider" ...
deskmail ticket act "$ref" --as alice@helpdesk.example --action "To IT Provider" \
    --comment "Please check the printer's power supply." >/dev/null

say ticket act "$ref" --as ops@itprov.example --action "To Customer" ...
deskmail ticket act "$ref" --as ops@itprov.example --action "To Customer" \
    --comment "Is it still plugged in?" >/dev/null

say ticket act "$ref" --as anna@acme.example --action comment ...
deskmail ticket act "$ref" --as anna@acme.example --action comment \
    --comment "Yes, and it still smokes." >/dev/null

say ticket act "$ref" --as anna@acme.example --action "To Web-IT Provider" "(refused)"
deskmail ticket act "$ref" --as anna@acme.example --action "To Web-IT Provider" \
    --comment "Maybe the web people know?" || true

say ticket act "$ref" --as alice@helpdesk.example --action Resolve ...
deskmail ticket act "$ref" --as alice@helpdesk.example --action Resolve --comment "Replaced the fuse." >/dev/null

say ticket act "$ref" --as anna@acme.example --action Reopen ...
deskmail ticket act "$ref" --as anna@acme.example --action Reopen --comment "It smokes again." >/dev/null

say ticket show "$ref" --as ben@acme.example
deskmail ticket show "$ref" --as ben@acme.example

say ticket show "$ref" --as carl@globex.example "(refused: another organisation)"
deskmail ticket show "$ref" --as carl@globex.example || true

say ticket list
deskmail ticket list

say outbox send "(no SMTP configured: into the spool directory data/spool)"
deskmail outbox send

say outbox list
deskmail outbox list
echo
echo "The notifications are in data/spool/*.eml; open one in a mail client to see the action links."
