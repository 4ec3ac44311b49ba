# Sourced by each peer's setup script: make (or reuse) the peer's venv with bookcast's torch.
# Usage inside a script: . "$(dirname "$0")/_common.sh"; make_venv NAME  -> sets $VENV and $PY.
set -euo pipefail
PEERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.peers" 2>/dev/null && pwd || { mkdir -p "$(dirname "${BASH_SOURCE[0]}")/../../.peers" && cd "$(dirname "${BASH_SOURCE[0]}")/../../.peers" && pwd; })"
BASE_PYTHON="${BASE_PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

make_venv() {
  VENV="$PEERS_DIR/$1/venv"
  PY="$VENV/bin/python"
  if [ ! -x "$PY" ]; then
    "$BASE_PYTHON" -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
  fi
  # The same torch as bookcast, pinned so that no peer's requirements swap it for another build.
  echo "$TORCH_SPEC" > "$PEERS_DIR/$1/constraints.txt"
  "$PY" -m pip install -q "$TORCH_SPEC" numpy
}
