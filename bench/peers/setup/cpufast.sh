#!/usr/bin/env bash
# Set up the `gpt-sovits-cpufast` peer (PyPI 0.1.0, a CPU-focused inference fork of GPT-SoVITS).
#
# Why --no-deps: the wheel declares the whole WebUI/API/front-end stack (gradio<5, fastapi,
# pyopenjtalk and python_mecab_ko that compile from source, jieba_fast, g2p/NLTK data, numpy<2...),
# none of which the model-level path the driver uses imports. That path (AR/models/t2s_*,
# module/models.py, module/mel_processing.py, process_ckpt.py) needs only torch, numpy, einops
# and tqdm (module/core_vq.py) and packaging (module/ddp_utils.py); psutil is imported lazily by
# the T2S RSS probe.
# pip then warns that the wheel's other declared requirements are missing: expected, harmless.
# Idempotent: re-running reuses the venv and pip skips what is already there.
. "$(dirname "$0")/_common.sh"

PEER_SPEC="gpt-sovits-cpufast==0.1.0"
DEPS=(einops==0.8.2 tqdm==4.70.1 packaging==26.3 psutil==7.2.2)

make_venv cpufast
"$PY" -m pip install -q -c "$PEERS_DIR/cpufast/constraints.txt" --no-deps "$PEER_SPEC" \
  || { echo "cpufast: could not install $PEER_SPEC" >&2; exit 1; }
"$PY" -m pip install -q -c "$PEERS_DIR/cpufast/constraints.txt" "${DEPS[@]}" \
  || { echo "cpufast: could not install ${DEPS[*]}" >&2; exit 1; }

# The wheel installs its code as top-level packages (GPT_SoVITS, tools, ...); the fork's own
# `gpt_sovits_cpufast.runtime.configure_runtime` puts them on sys.path. Check the models import.
"$PY" - <<'EOF' || { echo "cpufast: the peer's T2S/SoVITS modules do not import" >&2; exit 1; }
import sys
from pathlib import Path
import gpt_sovits_cpufast
root = Path(gpt_sovits_cpufast.__file__).resolve().parent.parent
sys.path[:0] = [str(root), str(root / "GPT_SoVITS")]
import AR.models.t2s_lightning_module, module.models, module.mel_processing, process_ckpt  # noqa: F401
print(f"cpufast: gpt-sovits-cpufast {gpt_sovits_cpufast.__version__} ready in {sys.prefix}")
EOF
