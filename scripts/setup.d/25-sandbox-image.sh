#!/usr/bin/env bash
# The docker sandbox backend's base image (Debian bookworm minbase + python3, pytest, git, patch),
# built from a debootstrap rootfs and imported into podman. The rootfs tarball is cached under
# ~/.cache/vtforge/ so it is built once per machine; the import is skipped when the image exists.
set -euo pipefail
image="${VTFORGE_SANDBOX_IMAGE:-localhost/vtforge-sandbox:bookworm}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vtforge"
tarball="$cache/sandbox-rootfs-bookworm.tar"
command -v podman >/dev/null || { echo "setup: podman missing; skipping the sandbox image"; exit 0; }
if podman image exists "$image" 2>/dev/null; then exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { echo "setup: debootstrap missing; skipping the sandbox image"; exit 0; }
  rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap '$SUDO rm -rf "$rootfs"' EXIT
  echo "setup: building the sandbox rootfs with debootstrap (about 75 s, once per machine)"
  $SUDO debootstrap --variant=minbase --include=python3,python3-pytest,git,patch bookworm "$rootfs" >/dev/null
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  $SUDO tar -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
echo "setup: importing $image from $tarball"
podman import --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
