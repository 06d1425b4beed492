#!/usr/bin/env bash
# podman's engine settings for the docker sandbox backend: runtime runc (crun fails on this cgroup
# layout) and no default ulimits (runc cannot set RLIMIT_NOFILE otherwise). Idempotent: the file is
# rewritten only when it lacks these settings; an existing file is kept as containers.conf.vtforge-bak.
set -euo pipefail
command -v podman >/dev/null || { echo "setup: podman is not installed (see 10-debian.sh)"; exit 0; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
conf=/etc/containers/containers.conf
want='[containers]
default_ulimits = []

[engine]
runtime = "runc"'
if [ -f "$conf" ] && grep -q '^runtime *= *"runc"' "$conf" && grep -q '^default_ulimits *= *\[\]' "$conf"; then
  exit 0
fi
$SUDO mkdir -p /etc/containers
if [ -f "$conf" ] && [ ! -f "$conf.vtforge-bak" ]; then $SUDO cp "$conf" "$conf.vtforge-bak"; fi
printf '%s\n' "$want" | $SUDO tee "$conf" >/dev/null
echo "setup: wrote $conf (runtime runc, default_ulimits = [])"
