#!/usr/bin/env bash
# Idempotent machine set-up for vtforge: runs every scripts/setup.d/*.sh in name order.
# Each step checks what is already there and installs only what is missing (with caches).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for step in "$here"/setup.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
