#!/usr/bin/env bash
# The two README commands. Both set up the venv first (idempotent; fast the second time).
#   ./agra.sh demo [agra-ros demo options]   the live closed-loop demo (real video camera, shipped weights)
#   ./agra.sh test [pytest options]          the whole test suite
# Anything else is passed to the agra-ros CLI inside the venv:  ./agra.sh bench ..., ./agra.sh launch ...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${AGRA_VENV:-$ROOT/.venv}"
source "$ROOT/scripts/setup_env.sh"
cmd="${1:-demo}"
shift || true
case "$cmd" in
  test)
    cd "$ROOT"
    exec "$VENV/bin/python" -m pytest test "$@"
    ;;
  *)
    exec "$VENV/bin/agra-ros" "$cmd" "$@"
    ;;
esac
