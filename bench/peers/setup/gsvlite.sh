#!/usr/bin/env bash
# Set up the gsv-tts-lite peer (PyPI `gsv-tts-lite`, import name `gsv_tts`) for bench_peers.py:
# its own venv under bench/.peers/gsvlite with bookcast's torch. Idempotent: a re-run re-checks.
#
# Why the torchaudio step: gsv_tts imports torchaudio at the top of its TTS module (it uses only the
# pure-PyTorch Spectrogram/Resample transforms) but does not declare it. No torchaudio release is
# built for torch 2.13 (the newest, 2.11.1, pins torch==2.11.1 and its PyPI wheel links CUDA), so
# we install 2.11.1 without its deps and delete its compiled libraries; torchaudio then runs its
# Python-only mode (its loader skips a library that is absent), which is all gsv_tts needs.
. "$(dirname "$0")/_common.sh"

fail() { echo "gsvlite setup: $*" >&2; exit 1; }

make_venv gsvlite
CONSTRAINTS="$PEERS_DIR/gsvlite/constraints.txt"

# The peer and its declared requirements, pinned to the versions resolved when this was written.
"$PY" -m pip install -q -c "$CONSTRAINTS" \
  gsv-tts-lite==0.4.7 \
  av==18.1.0 einops==0.8.2 future==1.0.0 inflect==7.6.0 jieba==0.42.1 nltk==3.10.4 \
  onnxruntime==1.32.0 py3langid==0.4.0 pyopenjtalk-plus==0.4.1.post10 pypinyin==0.55.0 \
  pysbd==0.3.4 requests==2.34.2 safetensors==0.8.0 sounddevice==0.5.6 soundfile==0.14.0 \
  tqdm==4.70.1 transformers==5.24.0 wordsegment==1.3.1 \
  || fail "cannot install gsv-tts-lite==0.4.7 or its requirements with $TORCH_SPEC"

"$PY" -m pip install -q --no-deps torchaudio==2.11.1 || fail "cannot install torchaudio==2.11.1"
TA_LIB="$("$PY" -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("torchaudio").origin).parent / "lib")')"
find "$TA_LIB" -maxdepth 1 -name '*.so' -delete

"$PY" -c "import gsv_tts, torchaudio; torchaudio.transforms.Spectrogram()" >/dev/null 2>&1 \
  || fail "gsv_tts does not import in $VENV (run: $PY -c 'import gsv_tts')"
echo "gsvlite ready: $VENV"
