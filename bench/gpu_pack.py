"""Pack what the GPU check needs and the lent GPU machine lacks, so the check runs in one call.

The lent machine (an H200 with its own Python 3.12 image: PyTorch with CUDA, transformers, numpy,
scipy, onnxruntime ... but not Prefect or our audio and text libraries) reaches no package index,
and only the repository travels to it — not the shared fixtures beside it. So, here, before asking
for the machine:

- every package bookcast needs that the image does not hold is downloaded for CPython 3.12 on
  manylinux x86-64 (the few published only as source are built into wheels here), installed into
  one folder and packed as `.gpu/site.tar.xz` (xz: the Chinese word list, text, packs small), and
  `bench/gpu_run.sh` unpacks it there and puts it on PYTHONPATH. Left out, as the check never
  imports them and the call may carry 64 MiB in all: imageio-ffmpeg (M4B only, 68 MB) and
  espeakng-loader (the default voice; the check runs a GPT-SoVITS voice);
- the shared fixtures' small files (keys_full_v2.json: the full-size configs; the goldens) are
  copied to `.gpu/shared/`, which gpu_run.sh names in BOOKCAST_SHARED (where the tests and
  benches look instead of `../shared`).

`.gpu/` is listed in .git/info/exclude, so nothing of it is committed; the run names it in `carry`:

    python bench/gpu_pack.py                   # here: writes .gpu/ and prints the device call
    bash bench/gpu_run.sh                      # there: the device call's command (carry [".gpu"])
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACK = REPO / ".gpu"
SHARED = REPO.parent / "shared" / "fixtures" / "gpt_sovits_v2"
SMALL_FIXTURE = 4 << 20  # bytes: the 31-MB SoVITS checkpoint stays behind (no GPU test reads it)
CARRY_LIMIT = 64 << 20
# The GPU machine's image, as the workplace lists it (2026-11-17): these are there already.
ON_IMAGE = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt
jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba
numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx
onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client
propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions
pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning
pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn
sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy
tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers
toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray
xxhash yarl zipp
""".split())
LEFT_OUT = frozenset({"imageio-ffmpeg", "espeakng-loader"})
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64", *(
    f"manylinux_2_{n}_x86_64" for n in (24, 27, 28, 31, 34, 35))]
TARGET = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:",
          *(arg for p in PLATFORMS for arg in ("--platform", p))]


def _name(wheel: Path) -> str:
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False)


def download(into: Path) -> list[Path]:
    """Every wheel of bookcast's core dependency closure for CPython 3.12 (the gpt-sovits extra —
    torch, transformers, onnx, onnxruntime — is the image's own: its torch is the CUDA build); a
    package published only as source is built here into a (pure-Python) wheel and offered to the
    resolver from `built`."""
    built = into / "built"
    built.mkdir(parents=True, exist_ok=True)
    for _ in range(12):
        done = _pip("download", "-q", *TARGET, "--find-links", str(built), "-d", str(into), str(REPO))
        missing = re.search(r"No matching distribution found for ([A-Za-z0-9_.\-]+)", done.stderr)
        if done.returncode == 0:
            return sorted(into.glob("*.whl"))
        if not missing:
            raise SystemExit(f"gpu_pack: pip download failed:\n{done.stderr[-2000:]}")
        name = re.split(r"[<>=!~ ]", missing.group(1))[0]
        wheel = _pip("wheel", "-q", "--no-deps", "-w", str(built), name)
        if wheel.returncode != 0:
            raise SystemExit(f"gpu_pack: {name} has no wheel for 3.12 and did not build:\n{wheel.stderr[-2000:]}")
    raise SystemExit("gpu_pack: too many packages published only as source")


def pack_site(wheels: list[Path], out: Path) -> list[str]:
    """Install `wheels` (no dependencies: the closure is already complete) into one folder for 3.12
    and pack it as `out` (tar.xz). Returns the packages packed."""
    chosen = [w for w in wheels if _name(w) not in ON_IMAGE | LEFT_OUT | {"bookcast"}]
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        done = _pip("install", "-q", "--no-deps", "--no-compile", "--target", str(site), *TARGET,
                    *map(str, chosen))
        if done.returncode != 0:
            raise SystemExit(f"gpu_pack: installing into the 3.12 folder failed:\n{done.stderr[-2000:]}")
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: shebangs of this machine's Python
        subprocess.run(["tar", "-cJf", str(out), "-C", str(site), "."], check=True)
    return sorted(_name(w) for w in chosen)


def copy_fixtures(out: Path) -> int:
    """The shared fixtures' files under SMALL_FIXTURE bytes, into `out`; returns how many."""
    if not SHARED.is_dir():
        raise SystemExit(f"gpu_pack: the shared fixtures are not at {SHARED}")
    shutil.rmtree(out, ignore_errors=True)
    count = 0
    for path in SHARED.rglob("*"):
        if path.is_file() and path.stat().st_size < SMALL_FIXTURE:
            target = out / path.relative_to(SHARED)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            count += 1
    return count


def exclude_from_git() -> None:
    exclude = REPO / ".git" / "info" / "exclude"
    lines = exclude.read_text(encoding="utf-8").splitlines() if exclude.is_file() else []
    if "/.gpu/" not in lines:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text("\n".join([*lines, "/.gpu/"]) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--downloads", type=Path, default=Path(tempfile.gettempdir()) / "bookcast-gpu-wheels",
                    help="where the wheels are downloaded (kept: a second pack reuses them)")
    args = ap.parse_args(argv)
    exclude_from_git()
    PACK.mkdir(exist_ok=True)
    packed = pack_site(download(args.downloads), PACK / "site.tar.xz")
    fixtures = copy_fixtures(PACK / "shared" / "fixtures" / "gpt_sovits_v2")
    size = sum(p.stat().st_size for p in PACK.rglob("*") if p.is_file())
    tree = int(subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.count(b"\0"))
    print(f"{PACK}: {len(packed)} packages in site.tar.xz, {fixtures} fixture files; {size / 2**20:.1f} MiB "
          f"(+ the {tree} tracked files) of the call's {CARRY_LIMIT >> 20} MiB")
    print("packed:", " ".join(packed))
    if size > CARRY_LIMIT * 0.9:
        raise SystemExit("gpu_pack: too large to travel beside the working tree")
    print('device call: run(command="bash bench/gpu_run.sh", carry=[".gpu"], timeout_s=600)')


if __name__ == "__main__":
    main()
