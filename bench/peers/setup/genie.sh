#!/usr/bin/env bash
# Peer "genie": genie-tts 2.0.2 (GPT-SoVITS ONNX inference engine + converter) in its own venv, and
# the shared random GPT-SoVITS v2 weights converted to ONNX by genie's OWN converter.
# Idempotent: the venv and the converted folder are reused when already complete.
. "$(dirname "$0")/_common.sh"
make_venv genie

GENIE_VERSION="2.0.2"
ORT_VERSION="1.22.1"   # the exact onnxruntime genie-tts 2.0.2 requires
ONNX_VERSION="1.23.2"  # the converter edits graphs with `onnx`; pinned for repeatability

# All of genie's declared requirements install on this machine (jieba_fast builds from source),
# so no --no-deps is needed; the constraints file keeps bookcast's torch.
"$PY" -m pip install -q -c "$PEERS_DIR/genie/constraints.txt" \
  "genie-tts==$GENIE_VERSION" "onnxruntime==$ORT_VERSION" "onnx==$ONNX_VERSION" \
  || { echo "genie: pip could not install genie-tts==$GENIE_VERSION / onnxruntime==$ORT_VERSION" >&2; exit 1; }

WORK="$(cd "$PEERS_DIR/work" 2>/dev/null && pwd)" \
  || { echo "genie: shared inputs missing at $PEERS_DIR/work (generate them first)" >&2; exit 1; }
for f in gpt.ckpt sovits.pth; do
  [ -f "$WORK/$f" ] || { echo "genie: $WORK/$f missing (generate the shared inputs first)" >&2; exit 1; }
done

# Importing genie_tts checks for a "GenieData" folder (HuBERT / speaker-encoder ONNX) and, when it is
# absent, ASKS ON STDIN whether to download it from Hugging Face. Neither model is used here (HuBERT
# only feeds the prompt tokens, which the benchmark supplies; the speaker encoder is v2ProPlus only),
# so an empty GenieData folder plus existing paths for the two checks keep it quiet and offline.
GENIE_DIR="$PEERS_DIR/genie"
mkdir -p "$GENIE_DIR/GenieData"
export GENIE_DATA_DIR="$GENIE_DIR/GenieData" HUBERT_MODEL_DIR="$WORK/chinese-hubert-base" \
  SV_MODEL="$GENIE_DIR/GenieData" HF_HUB_OFFLINE=1

OUT="$GENIE_DIR/onnx"
FILES="t2s_encoder_fp32.onnx t2s_encoder_fp32.bin t2s_first_stage_decoder_fp32.onnx t2s_stage_decoder_fp32.onnx t2s_shared_fp16.bin vits_fp32.onnx vits_fp16.bin"
complete() { for f in $FILES; do [ -s "$1/$f" ] || return 1; done; }

if complete "$OUT"; then
  echo "genie: already converted in $OUT"
  exit 0
fi

# genie's converter logs instead of raising and writes a Cache/ folder under the working directory:
# run it from the peer's folder into a scratch dir, then check every file before publishing it.
rm -rf "$OUT.partial"
start=$(date +%s)
(cd "$GENIE_DIR" && "$PY" -c 'import sys, genie_tts; genie_tts.convert_to_onnx(*sys.argv[1:4])' \
  "$WORK/gpt.ckpt" "$WORK/sovits.pth" "$OUT.partial" </dev/null)
complete "$OUT.partial" || { echo "genie: the converter did not produce all of: $FILES (see its log above)" >&2; exit 1; }
rm -rf "$OUT"
mv "$OUT.partial" "$OUT"
echo "genie: converted in $(( $(date +%s) - start )) s -> $OUT ($(du -sh "$OUT" | cut -f1))"
