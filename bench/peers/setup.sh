#!/usr/bin/env bash
# Build every peer's environment for bench/bench_peers.py (all optional: a peer that cannot be set
# up is reported and skipped; the benchmark then runs without it). Peers come from PyPI; the
# reference GPT-SoVITS comes from a checkout: set GPT_SOVITS_SRC to a clone or bare git dir of
# RVC-Boss/GPT-SoVITS (see setup/reference.sh). Then: python bench/peers/make_inputs.py
#
#   bench/peers/setup.sh                 # all peers
#   bench/peers/setup.sh cpufast genie   # some
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(reference cpufast gsvlite genie)
failed=()
for peer in "${peers[@]}"; do
  echo "== $peer"
  if ! bash "$here/setup/$peer.sh"; then
    echo "   $peer: not set up (see above); bench_peers.py will skip it"
    failed+=("$peer")
  fi
done
[ ${#failed[@]} -eq 0 ] && echo "all peers ready" || echo "not set up: ${failed[*]}"
