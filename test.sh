#!/usr/bin/env bash
# Runs every test, with the race detector. Builds OpenTofu on first use
# (cached under ~/.cache/opentaco-test); terraform must be on PATH.
set -euo pipefail
cd "$(dirname "$0")"
.ci/tools.sh all >&2
export OPENTACO_TOFU="${OPENTACO_TOFU:-$HOME/.cache/opentaco-test/tofu-v1.10.7}"
exec go test -race -count=1 -timeout 25m ./... "$@"
