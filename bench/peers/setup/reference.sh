#!/usr/bin/env bash
# bench_peers setup for the reference implementation itself, RVC-Boss/GPT-SoVITS.
#
# Makes bench/.peers/reference/venv (bookcast's torch + the packages that the reference's T2S
# import chain (AR/models/t2s_lightning_module.py) and SoVITS import chain (module/models.py,
# module/mel_processing.py) need, all real PyPI packages, pinned) and puts the reference source at
# bench/.peers/reference/src. The source is never vendored into bookcast; it comes from
#   GPT_SOVITS_SRC     a folder (plain source tree or git work tree) or a bare git dir, or else
#                      a `git clone` of https://github.com/RVC-Boss/GPT-SoVITS when reachable;
#   GPT_SOVITS_COMMIT  the commit to extract (default: the one our golden fixtures were made from).
# Idempotent: reruns keep the venv and skip the extraction when COMMIT already matches.
. "$(dirname "$0")/_common.sh"

GPT_SOVITS_COMMIT="${GPT_SOVITS_COMMIT:-48b1a0169a28582a8984402f82cf438d3bfa6aca}"
GPT_SOVITS_URL="${GPT_SOVITS_URL:-https://github.com/RVC-Boss/GPT-SoVITS}"
PEER="$PEERS_DIR/reference"

make_venv reference
# Pins: numpy<2 and librosa 0.10.2 as the reference's requirements.txt asks (librosa: only
# `librosa.filters.mel` in mel_processing, but the module imports it at the top); torchmetrics
# 1.5.0 (requirements: <=1.5) and pytorch-lightning 2.6.6 as the golden fixtures were made with;
# matplotlib for AR/modules/lr_schedulers (imported by the lightning module); x-transformers for
# f5_tts (imported by module/models.py for the v3/v4 DiT); einops for module/core_vq.
cat >> "$PEER/constraints.txt" <<'EOF'
numpy==1.26.4
pytorch-lightning==2.6.6
lightning-utilities==0.15.3
torchmetrics==1.5.0
librosa==0.10.2
numba==0.61.2
matplotlib==3.10.8
x-transformers==2.31.10
einops==0.8.2
tqdm==4.67.1
packaging==25.0
PyYAML==6.0.2
EOF
"$PY" -m pip install -q -c "$PEER/constraints.txt" numpy pytorch-lightning lightning-utilities torchmetrics \
  librosa numba matplotlib x-transformers einops tqdm packaging PyYAML

# --- the reference source ------------------------------------------------------------------
if [ -f "$PEER/COMMIT" ] && [ "$(cat "$PEER/COMMIT")" = "$GPT_SOVITS_COMMIT" ] && [ -d "$PEER/src/GPT_SoVITS" ]; then
  echo "reference source already at $PEER/src ($GPT_SOVITS_COMMIT)"
  exit 0
fi

# extract_commit GIT_DIR DEST: write COMMIT's tree into DEST. Mirrors may lack a few large blobs
# (LFS-like data files that no code path here reads), which makes `git archive` abort, so the tree
# is read into a throw-away index, missing blobs are dropped from it, and the rest checked out.
extract_commit() {
  local gd="$1" dest="$2" idx missing
  idx="$(mktemp)"
  rm -f "$idx"
  GIT_INDEX_FILE="$idx" git --git-dir="$gd" read-tree "$GPT_SOVITS_COMMIT"
  missing="$(git --git-dir="$gd" ls-tree -r "$GPT_SOVITS_COMMIT" | awk '$2=="blob"{print $3}' \
             | git --git-dir="$gd" cat-file --batch-check | awk '$2=="missing"{print $1}')"
  if [ -n "$missing" ]; then
    git --git-dir="$gd" ls-tree -r -z "$GPT_SOVITS_COMMIT" \
      | grep -z -F -f <(printf '%s\n' $missing) | sed -z 's/^[^\t]*\t//' \
      | GIT_INDEX_FILE="$idx" git --git-dir="$gd" update-index -z --force-remove --stdin
    echo "skipped $(printf '%s\n' $missing | wc -l) blob(s) missing from $gd" >&2
  fi
  mkdir -p "$dest"
  GIT_INDEX_FILE="$idx" git --git-dir="$gd" --work-tree="$dest" checkout-index -a -f --prefix="$dest/"
  rm -f "$idx"
}

tmp="$(mktemp -d "$PEER/src.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
if [ -n "${GPT_SOVITS_SRC:-}" ]; then
  if git --git-dir="$GPT_SOVITS_SRC" rev-parse --verify -q "$GPT_SOVITS_COMMIT^{commit}" >/dev/null 2>&1; then
    extract_commit "$GPT_SOVITS_SRC" "$tmp/src"
  elif [ -d "$GPT_SOVITS_SRC/.git" ] || [ -f "$GPT_SOVITS_SRC/.git" ]; then
    extract_commit "$(git -C "$GPT_SOVITS_SRC" rev-parse --absolute-git-dir)" "$tmp/src"
  elif [ -d "$GPT_SOVITS_SRC/GPT_SoVITS" ]; then
    echo "GPT_SOVITS_SRC is a plain source folder: copying it, assuming it is commit $GPT_SOVITS_COMMIT" >&2
    cp -a "$GPT_SOVITS_SRC" "$tmp/src"
  else
    echo "GPT_SOVITS_SRC=$GPT_SOVITS_SRC is neither a GPT-SoVITS source folder nor a git dir holding $GPT_SOVITS_COMMIT" >&2
    exit 1
  fi
elif GIT_TERMINAL_PROMPT=0 git clone -q --no-checkout "$GPT_SOVITS_URL" "$tmp/clone" 2>/dev/null; then
  extract_commit "$tmp/clone/.git" "$tmp/src"
else
  echo "cannot get GPT-SoVITS: set GPT_SOVITS_SRC to a checkout or bare git dir of $GPT_SOVITS_URL (commit $GPT_SOVITS_COMMIT)" >&2
  exit 1
fi
rm -rf "$PEER/src"
mv "$tmp/src" "$PEER/src"
echo "$GPT_SOVITS_COMMIT" > "$PEER/COMMIT"
echo "reference source at $PEER/src ($GPT_SOVITS_COMMIT)"
