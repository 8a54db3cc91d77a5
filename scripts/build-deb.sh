#!/usr/bin/env bash
# Builds deskmail's Debian package and prints its path (target/debian/deskmail_*.deb):
# 1. the release binary (`cargo build --release --locked`);
# 2. from that binary, into target/deb-assets/: the man pages (`deskmail man-page --dir`, gzipped) and
#    the bash, zsh and fish completions (`deskmail completions SHELL`); and the systemd unit,
#    systemd/deskmail.service with ExecStart= naming /usr/bin/deskmail instead of
#    /usr/local/bin/deskmail (the one unit serves both installs);
# 3. `cargo deb --no-build`, which takes what goes where from [package.metadata.deb] in
#    Cargo.toml, and the maintainer scripts from packaging/debian/.
# Needs cargo-deb (`cargo install cargo-deb --locked`; scripts/test-setup.sh installs it) and
# dpkg-dev (dpkg-shlibdeps finds the libraries the binary depends on). Install the package with
#   apt install ./target/debian/deskmail_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "build-deb: $*" >&2; }

if ! cargo deb --version >/dev/null 2>&1; then
    say "cargo-deb is missing: cargo install cargo-deb --locked (or run scripts/test-setup.sh)"
    exit 1
fi
say "building the release binary"
cargo build --release --locked >&2
bin=${CARGO_TARGET_DIR:-target}/release/deskmail

assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets"
sed 's|^ExecStart=/usr/local/bin/deskmail |ExecStart=/usr/bin/deskmail |' systemd/deskmail.service >"$assets/deskmail.service"
if ! grep -q '^ExecStart=/usr/bin/deskmail ' "$assets/deskmail.service"; then
    say "systemd/deskmail.service has no ExecStart=/usr/local/bin/deskmail line to point to /usr/bin/deskmail"
    exit 1
fi
mkdir "$assets/man"
"$bin" man-page --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash >"$assets/deskmail.bash"
"$bin" completions zsh >"$assets/_deskmail"
"$bin" completions fish >"$assets/deskmail.fish"

say "packaging"
# The files in the package are dated by the last commit, not by the time of the build. (Set for
# this step only: some crates' build scripts watch SOURCE_DATE_EPOCH, and the
# release build above should reuse what a plain `cargo build --release` built.)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
# cargo-deb prints the package's path last on stdout.
deb=$(SOURCE_DATE_EPOCH=$epoch cargo deb --no-build --locked | tail -n 1)
say "built $deb"
echo "$deb"
