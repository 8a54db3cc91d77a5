#!/bin/sh
# tests/mailstack/start.sh DIR SMTP_PORT IMAP_PORT LMTP_PORT [SMTPS_PORT [IMAPS_PORT]]
#
# Starts a throw-away Dovecot (IMAP+IDLE, LMTP) + Postfix (SMTP -> LMTP) pair bound to 127.0.0.1
# only, with everything (config, mail, queue, logs, pids) under DIR, for deskmail's tests
# (tests/support/mailstack.rs). Must run as root. Does not touch /etc/postfix or /etc/dovecot (it
# only *reads* Postfix's compiled-in /etc/postfix/postfix-files). Adapted from the verified recipe
# this project was given; each non-obvious setting says why.
#
# Prerequisite (scripts/test-setup.sh installs it):
#   DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd dovecot-lmtpd postfix
#
# Users: one address per line in DIR/users.txt (password "secret" for all); the domains are
# taken from them. OAuth2: see DIR/oauth2.url below. TLS: when DIR/tls/cert.pem and
# DIR/tls/key.pem exist, Postfix offers STARTTLS on SMTP_PORT and, given SMTPS_PORT, implicit
# TLS (the "submissions" style of port 465) there; that port offers no PIPELINING, so that
# clients' step-by-step path is exercised too. Dovecot then offers STARTTLS on IMAP_PORT and,
# given IMAPS_PORT, implicit TLS there, with the same certificate.
set -eu

if [ $# -lt 4 ] || [ $# -gt 6 ]; then
    echo "usage: $0 DIR SMTP_PORT IMAP_PORT LMTP_PORT [SMTPS_PORT [IMAPS_PORT]]" >&2
    exit 2
fi
DIR=$1 SMTP_PORT=$2 IMAP_PORT=$3 LMTP_PORT=$4 SMTPS_PORT=${5:-} IMAPS_PORT=${6:-}

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }

# Absolute path, no trailing slash (Postfix rejects relative config/queue dirs).
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)

# Owner of the mail files (Dovecot mail processes run as this uid/gid).
# Debian's "mail" user is uid 8 / gid 8 -> needs first_valid_uid/gid <= 8, else
#   Error: ... Mail access for users with UID 8 not permitted (see first_valid_uid
#   in config file, uid from userdb lookup).
VMAIL_USER=mail
VMAIL_UID=$(id -u "$VMAIL_USER")
VMAIL_GID=$(id -g "$VMAIL_USER")

[ -f "$DIR/users.txt" ] || { echo "$DIR/users.txt is missing (one address per line)" >&2; exit 2; }
USERS=$(grep -v '^[[:space:]]*$' "$DIR/users.txt" | tr '\n' ' ')
DOMAINS=$(for u in $USERS; do echo "${u#*@}"; done | sort -u | tr '\n' ' ')
PASSWORD=secret

# Everybody (dovecot auth as "dovecot", mail processes as "mail", postfix) must
# be able to traverse DIR. mktemp -d / Rust tempfile create 0700 dirs, and then
# every delivery fails (Postfix defers with "451 4.3.0 Temporary internal error"):
#   auth: Error: passwd-file(customer2@acme.test,127.0.0.1): stat(DIR/dovecot/users)
#   failed: Permission denied (euid=109(dovecot) egid=113(dovecot) missing +x perm: DIR,
#   dir owned by 0:0 mode=0700)
chmod 0755 "$DIR"
mkdir -p "$DIR/log" "$DIR/dovecot" "$DIR/dovecot/state" \
         "$DIR/mail" "$DIR/postfix" "$DIR/postfix/etc" "$DIR/postfix/data"

# UNIX socket paths are limited to 107 bytes (sun_path).
#  - Dovecot creates ~35 sockets under base_dir, longest "token-login/imap-urlauth":
#      Error: service(stats): net_listen_unix(<base_dir>/stats-reader) failed: File name too long
#      Fatal: Failed to start listeners
#  - Postfix commands (with maillog_file set) connect to the absolute path
#    $queue_directory/public/postlog; if too long, "postfix start" exits 1 and
#    prints NOTHING (no tty, no /dev/log): the message only appears on a tty:
#      postfix: fatal: unix_dgram_connect: unix-domain name too long: .../public/postlog
# So if DIR is long, put base_dir and queue_directory into a short mktemp dir and
# leave symlinks DIR/dovecot/run and DIR/postfix/spool pointing at them.
if [ -L "$DIR/dovecot/run" ]; then
    SHORT=$(dirname "$(readlink "$DIR/dovecot/run")")
elif [ ${#DIR} -le 66 ]; then
    SHORT=
else
    SHORT=$(mktemp -d /tmp/msrt.XXXXXX)
    chmod 0755 "$SHORT"
    ln -s "$SHORT/run" "$DIR/dovecot/run"
    ln -s "$SHORT/spool" "$DIR/postfix/spool"
fi
if [ -n "$SHORT" ]; then
    BASE_DIR=$SHORT/run QUEUE_DIR=$SHORT/spool
else
    BASE_DIR=$DIR/dovecot/run QUEUE_DIR=$DIR/postfix/spool
fi
mkdir -p "$BASE_DIR" "$QUEUE_DIR"
chmod 0755 "$BASE_DIR" "$QUEUE_DIR"
chmod 0755 "$DIR/log" "$DIR/dovecot" "$DIR/postfix" "$DIR/postfix/etc"
chown "$VMAIL_UID:$VMAIL_GID" "$DIR/mail"
# Postfix: data_directory must be owned by mail_owner, else
#   "fatal: open lock file .../data/master.lock: cannot create file exclusively: Permission denied"
chown postfix:postfix "$DIR/postfix/data"
chmod 0700 "$DIR/postfix/data"
chmod 0770 "$DIR/mail"

###########################################################################
# Dovecot
###########################################################################
: > "$DIR/dovecot/users.tmp"
for u in $USERS; do
    # user:password:uid:gid:gecos:home:shell:extra
    printf '%s:{PLAIN}%s:%s:%s::%s/mail/%s::\n' \
        "$u" "$PASSWORD" "$VMAIL_UID" "$VMAIL_GID" "$DIR" "$u" >> "$DIR/dovecot/users.tmp"
done
mv "$DIR/dovecot/users.tmp" "$DIR/dovecot/users"
chmod 0644 "$DIR/dovecot/users"

# TLS with the harness's certificate when there is one (imaps on IMAPS_PORT, given one).
DOVECOT_SSL="ssl = no"
DOVECOT_IMAPS_PORT=0
if [ -f "$DIR/tls/cert.pem" ] && [ -f "$DIR/tls/key.pem" ]; then
    DOVECOT_SSL="ssl = yes
ssl_cert = <$DIR/tls/cert.pem
ssl_key = <$DIR/tls/key.pem"
    DOVECOT_IMAPS_PORT=${IMAPS_PORT:-0}
fi

# OAuth2: when DIR/oauth2.url holds the test token endpoint's introspection URL (RFC 7662),
# IMAP and (through the SASL socket) Postfix also take XOAUTH2 and OAUTHBEARER logins, whose
# bearer tokens Dovecot checks there; password logins go on as before.
MECHANISMS="plain login"
OAUTH2_PASSDB=
PASSWORD_MECHANISMS=
if [ -s "$DIR/oauth2.url" ]; then
    MECHANISMS="plain login xoauth2 oauthbearer"
    cat > "$DIR/dovecot/oauth2.conf.ext" <<EOF
introspection_mode = post
introspection_url = $(cat "$DIR/oauth2.url")
username_attribute = username
active_attribute = active
active_value = true
EOF
    OAUTH2_PASSDB="passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $DIR/dovecot/oauth2.conf.ext
}"
    PASSWORD_MECHANISMS="mechanisms = plain login"
fi

cat > "$DIR/dovecot/dovecot.conf" <<EOF
# Standalone Dovecot 2.3 config; nothing is included from /etc/dovecot.
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $BASE_DIR
state_dir = $DIR/dovecot/state
instance_name = dovecot-$IMAP_PORT
log_path = $DIR/log/dovecot.log
info_log_path = $DIR/log/dovecot.log
debug_log_path = $DIR/log/dovecot.log
$DOVECOT_SSL
disable_plaintext_auth = no
auth_mechanisms = $MECHANISMS
auth_cache_size = 0
# Failed logins are otherwise slowed down: 1st bad LOGIN ~1.5 s, every further
# one from 127.0.0.1 ~6 s (auth_failure_delay=2s + anvil "auth penalty").
# Both are disabled here so negative tests (wrong password) are fast.
auth_failure_delay = 0

# root-run Dovecot: unprivileged helpers use the Debian system users.
default_login_user = dovenull
default_internal_user = dovecot
mail_uid = $VMAIL_UID
mail_gid = $VMAIL_GID
first_valid_uid = $VMAIL_UID
first_valid_gid = $VMAIL_GID

mail_location = maildir:~/Maildir
mail_fsync = never

# plus addressing: support+token@helpdesk.test -> support's INBOX
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no
# Default "final" => "Delivered-To: support+tok@helpdesk.test" (RCPT TO address,
# +token kept). Do NOT use "original": Postfix sends no ORCPT, so Dovecot then
# silently omits the Delivered-To: header.
lmtp_hdr_delivery_address = final

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
  mailbox Junk {
    special_use = \\Junk
  }
}

$OAUTH2_PASSDB
passdb {
  driver = passwd-file
  $PASSWORD_MECHANISMS
  args = scheme=PLAIN username_format=%u $DIR/dovecot/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/dovecot/users
}

imap_idle_notify_interval = 2 mins
mail_max_userip_connections = 100

# anvil-auth-penalty socket unusable => no auth penalty (documented trick)
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
# SMTP AUTH for Postfix (optional for clients: AUTH is offered, not required):
# Postfix smtpd asks Dovecot's auth via this socket inside Postfix's queue dir.
service auth {
  unix_listener $QUEUE_DIR/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DOVECOT_IMAPS_PORT
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
  unix_listener lmtp {
    mode = 0600
  }
}
EOF

# Stop a previous instance using the same DIR (idempotent restart).
if [ -f "$BASE_DIR/master.pid" ] && kill -0 "$(cat "$BASE_DIR/master.pid")" 2>/dev/null; then
    doveadm -c "$DIR/dovecot/dovecot.conf" stop || true
fi
# Dovecot's master keeps the stderr it was started with open for its whole
# life (so does its "log" child).  If the caller captures stderr through a pipe
# (Rust Command::output(), `| cat`, python subprocess.run(capture_output=True))
# the read never sees EOF and the caller hangs.  So send it to a file, and echo
# it on failure (config errors are printed there, before log_path is in use).
# A stale anvil-auth-penalty socket (left by a run without the mode=0 trick)
# makes the first failed login take ~5.5 s ("auth: Error:
# net_connect_unix(anvil-auth-penalty) failed: Connection refused").
rm -f "$BASE_DIR/anvil-auth-penalty"
# Dovecot creates QUEUE_DIR/private/auth before Postfix ever ran: pre-create
# "private" with Postfix's own ownership/mode (postfix:root 0700, as
# post-install would), otherwise "postfix check" warns about it.
mkdir -p "$QUEUE_DIR/private"
chown postfix:root "$QUEUE_DIR/private"
chmod 0700 "$QUEUE_DIR/private"
if ! dovecot -c "$DIR/dovecot/dovecot.conf" </dev/null >/dev/null 2>"$DIR/log/dovecot.stderr"; then
    echo "dovecot failed to start:" >&2
    cat "$DIR/log/dovecot.stderr" >&2
    exit 1
fi

###########################################################################
# Postfix
###########################################################################
PF=$DIR/postfix/etc
: > "$PF/vmailbox"
for u in $USERS; do printf '%s OK\n' "$u" >> "$PF/vmailbox"; done

cat > "$PF/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $PF
queue_directory = $QUEUE_DIR
data_directory = $DIR/postfix/data
mail_owner = postfix
setgid_group = postdrop

# Logging: no syslog needed; postlogd writes here (needs postlog in master.cf
# and the path prefix whitelisted in maillog_file_prefixes).
maillog_file = $DIR/log/postfix.log
maillog_file_prefixes = $DIR/log

myhostname = mx.deskmail.test
mydomain = deskmail.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks_style = host
mynetworks = 127.0.0.0/8
# Hermetic: only the virtual domains are accepted; anything else gets
#   554 5.7.1 <x@example.com>: Relay access denied
# at RCPT time (no permit_mynetworks, although all clients are 127.0.0.1).
# NB: smtp_dns_support_level=disabled does NOT mean "no resolving": native
# lookups (getaddrinfo) still use /etc/resolv.conf, so never let mail out:
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
default_transport = error:5.7.1 outbound mail disabled in test stack
relay_transport = error:5.7.1 outbound mail disabled in test stack
# SMTP AUTH PLAIN/LOGIN via Dovecot (same passwd-file); no TLS needed.
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_banner = \$myhostname ESMTP deskmail-test
biff = no
append_dot_mydomain = no
readme_directory = no
smtputf8_enable = no

# Virtual domains -> Dovecot LMTP
virtual_mailbox_domains = $DOMAINS
# texthash: needs no postmap; unknown users get 550 at RCPT TO time.
virtual_mailbox_maps = texthash:$PF/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
recipient_delimiter = +

# No DNS: LMTP target is a numeric IP; these stop MX/A lookups for anything else.
disable_dns_lookups = yes
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native

# Speed / test friendliness
in_flow_delay = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_rate_limit = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 5s
delay_warning_time = 0
default_destination_concurrency_limit = 20
lmtp_destination_concurrency_limit = 20
message_size_limit = 52428800
EOF
if [ -f "$DIR/tls/cert.pem" ] && [ -f "$DIR/tls/key.pem" ]; then
    chmod 0755 "$DIR/tls"
    chmod 0644 "$DIR/tls/cert.pem"
    chmod 0600 "$DIR/tls/key.pem"
    cat >> "$PF/main.cf" <<EOF
# STARTTLS with the certificate the test harness generated.
smtpd_tls_cert_file = $DIR/tls/cert.pem
smtpd_tls_key_file = $DIR/tls/key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
EOF
fi

SMTPS_LINE=
if [ -n "$SMTPS_PORT" ] && [ -f "$DIR/tls/cert.pem" ]; then
    SMTPS_LINE="127.0.0.1:$SMTPS_PORT inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt -o smtpd_discard_ehlo_keywords=pipelining"
fi
cat > "$PF/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
$SMTPS_LINE
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
# TLS session cache and PRNG (smtpd refuses STARTTLS without it).
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
EOF

# Postfix re-reads any config/map file whose mtime is < 2 s old until it is
# "stable" (util/dict_load_file: it sleeps), so EVERY postfix/postconf command
# run right after writing main.cf takes ~2.1 s instead of ~0.01 s, and a
# freshly written texthash: map stalls the first smtpd. Backdate them.
touch -d "@$(( $(date +%s) - 10 ))" "$PF/main.cf" "$PF/master.cf" "$PF/vmailbox"

# Stop a previous Postfix using the same DIR (idempotent restart).
if [ -f "$QUEUE_DIR/pid/master.pid" ]; then
    pid=$(awk '{print $1; exit}' "$QUEUE_DIR/pid/master.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
fi
# "postfix start" takes ~0.3 s (also in an empty queue_directory: postfix-script
# runs post-install create-missing, which creates/chowns the queue dirs).
# "postfix start" returns when the master is ready (master -w), and the Postfix
# daemons do not keep the caller's stdout/stderr open.
if ! postfix -c "$PF" start </dev/null; then
    echo "postfix failed to start; see $DIR/log/postfix.log:" >&2
    tail -n 20 "$DIR/log/postfix.log" >&2 2>/dev/null
    exit 1
fi

echo "mailstack started in $DIR: smtp=127.0.0.1:$SMTP_PORT imap=127.0.0.1:$IMAP_PORT lmtp=127.0.0.1:$LMTP_PORT"
