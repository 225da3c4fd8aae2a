#!/usr/bin/env bash
# The GPU checks the open issues wait for, as one command for a lent GPU (the device tool), after
# benchmarks/gpu/prepare.sh ran here:
#   run(command="bash benchmarks/gpu/check.sh", carry=[".gpu"], timeout_s=570)
# Each step has its own time limit, so one slow step cannot take the others' time; what each wrote
# comes back under $OUT (at most 8 files):
#   1. bench-contrastive.json: one CP-S and one TP generation epoch against the official loops
#      (CP's main.py, TP in TransPoison's idiom), both on the GPU (issue 11); bench.json:
#      benchmarks/bench.py's hot paths, the simclr victim at the paper profile first, uebench in both
#      precisions against the careful reference (DataLoader workers 4), each over the whole 5k set;
#      bench-ssl.json: one pretraining epoch of each contrastive victim (simclr, byol, moco, simsiam,
#      supcl; paper profile) against the CP repository's two-crop PIL pipeline (issue 19, item 1).
#   2. (only with GPU_CHECK_PRECISION=1) precision.md, precision-cells.tgz: clean, random noise and EM x sl x none, seeds 0 and 1, the
#      quick profile on the 5k evidence subset, once in CUDA's default (`auto`: bf16 autocast) and
#      once in float32 (benchmarks/precision.py compares them; the records come back too). Answered
#      on an H200 on 2026-12-04 (bf16 does not weaken EM there); kept as a check of a new GPU/torch.
#   3. packing.json: 4 quick cells (clean x sl, seeds 0-3) with 1 worker, then with 4 workers on the
#      one GPU (the local executor packs workers onto GPUs round-robin): cells per hour each way.
#   log.txt: everything printed.
# To try the script itself without a GPU: GPU_CHECK_DEVICE=cpu GPU_CHECK_PROFILE=smoke bash benchmarks/gpu/check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
OUT=${OUT:-/tmp/gpu-check-out}
DEV=${GPU_CHECK_DEVICE:-cuda}
PROFILE=${GPU_CHECK_PROFILE:-quick}
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1

if ! python3 -c "import pydantic, kornia" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
NPZ=$REPO/.gpu/cifar10-5k.npz
[ -f "$NPZ" ] || { echo "check: $NPZ missing: run benchmarks/gpu/prepare.sh here and carry .gpu"; exit 2; }
nvidia-smi -L 2>/dev/null || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
git log -1 --format='commit %h %s' 2>/dev/null || true

matrix() {  # name precision attacks seeds
  cat <<YAML
name: $1
dataset: {name: npz, label: cifar10-5k-gpu, path: $NPZ}
profile: $PROFILE
device: $DEV
precision: $2
seeds: $4
threads: 1
attacks: $3
victims: [sl]
defenses: [none]
metrics: [accuracy]
YAML
}

echo "== 1. hot paths against the careful reference =="
mkdir -p "$WORK/data" && ln -sf "$NPZ" "$WORK/data/cifar10-jpeg.npz"
# On the GPU every cell covers the whole 5k set (--full: one epoch / one outer iteration over it; a
# 2-batch --quick cell lasts milliseconds there); certify is left out (its reference alone takes ~1 min;
# measured on the H100: benchmarks/README.md). The figures still open first (issue 11: cp and tp
# against their official loops on the GPU; issue 19: the simclr victim at the paper profile); each
# JSON is rewritten after every cell, so a time limit keeps what finished.
MODE=$([ "$DEV" = cpu ] && echo --quick || echo --full)
UEBENCH_SHARED_DATA=$WORK/data timeout 90 python3 benchmarks/bench.py $MODE --devices "$DEV" --cells cp-noanomaly,tp --reps 1 --no-rss \
  --workers 4 --json "$OUT/bench-contrastive.json" $([ "$DEV" = cpu ] && echo --no-reference)
# Issue 19's contrastive victims: one pretraining epoch of each at the paper profile (ResNet-18,
# batch 512) against the CP repository's two-crop PIL pipeline (8 DataLoader workers of the 16 cores).
UEBENCH_SHARED_DATA=$WORK/data timeout 150 python3 benchmarks/bench.py $MODE --devices "$DEV" \
  --cells ssl-simclr,ssl-byol,ssl-moco,ssl-simsiam,ssl-supcl --reps 1 --no-rss --workers 8 --json "$OUT/bench-ssl.json" \
  $([ "$DEV" = cpu ] && echo --no-reference)
CELLS=${GPU_CHECK_CELLS:-simclr,sl-resnet18,em-resnet18,em,at,sl-small-cnn}
UEBENCH_SHARED_DATA=$WORK/data timeout 190 python3 benchmarks/bench.py $MODE --devices "$DEV" --cells "$CELLS" --reps 1 --no-rss \
  --workers 4 --precision auto,float32 --json "$OUT/bench.json"

if [ "${GPU_CHECK_PRECISION:-0}" = 1 ]; then
echo "== 2. precision: auto (bf16 autocast on CUDA) against float32 =="
matrix gpu-precision auto "[clean, random-noise, em]" "[0, 1]" > "$WORK/auto.yaml"
matrix gpu-precision float32 "[clean, random-noise, em]" "[0, 1]" > "$WORK/fp32.yaml"
t0=$SECONDS
timeout 90 python3 -m benchmark run "$WORK/auto.yaml" --results "$WORK/auto" --workers 1 --quiet
timeout $((150 - (SECONDS - t0))) python3 -m benchmark run "$WORK/fp32.yaml" --results "$WORK/fp32" --workers 1 --quiet
python3 benchmarks/precision.py "$WORK/auto" --fp32 "$WORK/fp32" | tee "$OUT/precision.md"
tar -czf "$OUT/precision-cells.tgz" -C "$WORK" auto/cells fp32/cells 2>/dev/null || true
fi

echo "== 3. packing: 4 quick cells, 1 worker then 4 workers on one device =="
matrix gpu-packing auto "[clean]" "[0, 1, 2, 3]" > "$WORK/pack.yaml"
python3 - "$WORK" "$OUT/packing.json" <<'PY'
import json, subprocess, sys, time
from pathlib import Path
work, out = sys.argv[1], sys.argv[2]
rows = []
for workers in (1, 4):
    t = time.perf_counter()
    # timeout(1) sends SIGTERM: the runner stops its workers and keeps what finished (rc 124)
    cmd = ["timeout", "50", sys.executable, "-m", "benchmark", "run", f"{work}/pack.yaml", "--results", f"{work}/pack-{workers}",
           "--workers", str(workers), "--quiet"]
    rc = subprocess.run(cmd, check=False).returncode
    s = time.perf_counter() - t
    done = len(list(Path(f"{work}/pack-{workers}/cells").glob("*.json")))  # finished cells, also when cut off
    rows.append({"workers": workers, "cells_done": done, "of": 4, "wall_s": round(s, 1), "cells_per_hour": round(done * 3600 / s), "rc": rc})
    print(rows[-1], flush=True)
json.dump({"matrix": open(f"{work}/pack.yaml").read(), "runs": rows}, open(out, "w"), indent=2)
PY
echo "check: done in $SECONDS s"
