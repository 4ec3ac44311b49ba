#!/usr/bin/env bash
# The whole GPU check as ONE device call, most important stage first, each under its own time limit
# so that a slow stage cannot starve the rest, and everything logged to $OUT as it goes (what a
# timed-out call left there still comes back). Prepare it here first:
#
#     python bench/gpu_pack.py          # .gpu/: the packages the image lacks + the shared fixtures
#     run(command="bash bench/gpu_run.sh", carry=[".gpu"], timeout_s=600)
#
# Stages (at most 9.5 minutes by their limits; no GPU has run it yet):
#  1. the issue-17 figure: continuous vs static batching on a real book's sentence-length mix
#     (bench_continuous.py: 192 Moby-Dick sentences, 32 slots, float16);
#  2. the product end to end: `bookcast make` with a full-size GPT-SoVITS voice, static, static +
#     CUDA graphs, continuous (gpu_e2e.py);
#  3. the decoders side by side and SoVITS overlapped with decoding (gpu_check.py);
#  4. the suite's CUDA tests.
# STAGES=1,3 runs only those (a rerun after a failure). DRY=1 runs every stage small and on the CPU:
# the script and the packed environment checked without a GPU (with a Python 3.12 that holds the
# image's packages first on PATH as python3).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_run.log") 2>&1
STAGES="${STAGES:-1,2,3,4}"

export PYTHONUNBUFFERED=1 PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_HOME=/tmp/bookcast-prefect
export BOOKCAST_SHARED="$PWD/.gpu/shared" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ ! -f .gpu/site.tar.xz ]; then
    echo "gpu_run: .gpu/site.tar.xz missing: run python bench/gpu_pack.py here and carry .gpu"; exit 2
fi
mkdir -p /tmp/bookcast-site && tar -xJf .gpu/site.tar.xz -C /tmp/bookcast-site || exit 2
export PYTHONPATH="/tmp/bookcast-site:$PWD"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# What the stages import, at once: a package the image no longer has fails here, in seconds (not
# g2p_en itself: its import runs nltk downloads; synth.g2p reads only its data files).
python3 -c "import sys, torch, transformers, prefect, prefect_dask, flows.cli, flows.produce, mastering.master, \
synth.engines.gpt_sovits.engine, synth.g2p.en, synth.g2p.neural, pypinyin, jieba, cn2an, soxr, soundfile, lameenc, mutagen
print('python', sys.version.split()[0], '| torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(),
      '| transformers', transformers.__version__, '| prefect', prefect.__version__)" \
    || { echo "gpu_run: the packed environment does not import (see above); repack with bench/gpu_pack.py"; exit 2; }
echo "cpus $(nproc), load $(cut -d' ' -f1 /proc/loadavg)"

stage() {  # stage NUMBER SECONDS NAME COMMAND...
    local number=$1 limit=$2 name=$3; shift 3
    case ",$STAGES," in *",$number,"*) ;; *) return ;; esac
    echo; echo "=== stage $number: $name (limit ${limit} s)"
    local started=$SECONDS
    timeout --kill-after=10 "$limit" "$@"
    echo "=== stage $number: $name: exit $? after $((SECONDS - started)) s"
}

if [ -n "${DRY:-}" ]; then
    mix=(--sentences 8 --batch 4 --reps 1 --device cpu --more-fills 1); e2e=(--dry-run); decoders=(--dry-run --batches 1,4 --tokens 20)
else
    mix=(--sentences 192 --batch 32 --reps 2 --ways "static,longest first,chunks" --more-fills 8); e2e=(--words 300); decoders=(--batches 1,8,32 --tokens 200 --reps 2)
fi
stage 1 180 "continuous vs static, real book mix" \
    python3 bench/bench_continuous.py --length-noise 0.3 "${mix[@]}"
stage 2 180 "bookcast make with a GPT-SoVITS voice" \
    python3 bench/gpu_e2e.py --work /tmp/gpu-e2e --json "$OUT/e2e.json" "${e2e[@]}"
cp /tmp/gpu-e2e/*.log "$OUT/" 2>/dev/null || true
stage 3 150 "decoders and SoVITS overlap" \
    python3 bench/gpu_check.py --no-tests "${decoders[@]}"
stage 4 60 "CUDA tests" \
    python3 -m pytest -q -p no:cacheprovider -k cuda tests/test_gpt_sovits_static.py tests/test_gpt_sovits_engine.py
echo; echo "gpu_run: done"
