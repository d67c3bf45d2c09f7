#!/usr/bin/env bash
# Fetches lwIP, the test guest's TCP/IP stack, from Debian's source package and
# unpacks it to build/third_party/lwip (the guest's build compiles it from there;
# it is never copied into the repository). Safe to run again: does nothing when
# the tree is already there, and downloads only when the tarball is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=build/third_party
TREE=$DEST/lwip
SOURCES_FILE=/etc/apt/sources.list.d/lockstep-src.sources

[ -f "$TREE/src/core/tcp.c" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# apt-get source needs a deb-src entry; add Debian bookworm's if none exists.
if ! grep -rqsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "fetch-lwip: adding a deb-src entry ($SOURCES_FILE)"
	$SUDO tee "$SOURCES_FILE" >/dev/null <<-EOF
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: bookworm
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	$SUDO apt-get update -qq
fi

mkdir -p "$DEST"
if ! ls "$DEST"/lwip_*.orig.tar.* >/dev/null 2>&1; then
	(cd "$DEST" && apt-get source --download-only -qq lwip)
fi
tarball=$(ls "$DEST"/lwip_*.orig.tar.* | sort | tail -n 1)

# Unpack beside the final path, then rename: an interrupted run leaves no half tree.
tmp=$(mktemp -d "$DEST/unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -xf "$tarball" -C "$tmp"
top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'lwip*' | head -n 1)
[ -f "$top/src/core/tcp.c" ] || { echo "fetch-lwip: $tarball holds no lwIP source tree" >&2; exit 1; }
rm -rf "$TREE"
mv "$top" "$TREE"
echo "fetch-lwip: lwIP source in $TREE (from $(basename "$tarball"))"
