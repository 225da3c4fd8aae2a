#!/usr/bin/env bash
# Run HERE (the CPU machine), once per session, before benchmarks/gpu/check.sh goes to a lent GPU:
# the device machine gets only the working tree (64 MiB at most), without ../shared and without
# packages it lacks. This writes the git-ignored folder .gpu/ (about 50 MiB), which the `run` call
# carries:
#   .gpu/cifar10-5k.npz  the evidence's 5k class-balanced training subset (the index shipped beside
#                        the data) and a class-balanced 5k test subset (the first 500 test images of
#                        each class) of ../shared/data/cifar10-jpeg.npz (JPEG-75): the full test set
#                        would take the travelling tree (git's files + .gpu) past the 64 MiB limit
#   .gpu/whl/            wheels for Python 3.12 of what the GPU image lacks (pydantic, kornia)
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${UEBENCH_SHARED_DATA:-../shared/data}
mkdir -p .gpu/whl
python3 - "$SHARED" <<'PY'
import sys
from pathlib import Path

import numpy as np

shared = Path(sys.argv[1])
out = Path(".gpu/cifar10-5k.npz")
if not out.exists():
    with np.load(shared / "cifar10-jpeg.npz") as d:
        idx = np.load(shared / "cifar10-subset5k-train-idx.npy")
        yt = d["y_test"]
        test = np.sort(np.concatenate([np.flatnonzero(yt == c)[:500] for c in np.unique(yt)]))
        np.savez_compressed(out, x_train=d["x_train"][idx], y_train=d["y_train"][idx],
                            x_test=d["x_test"][test], y_test=yt[test], classes=d["classes"])
print(f"prepare: {out} ({out.stat().st_size / 2**20:.1f} MiB)")
PY
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl \
  pydantic==2.13.4 pydantic_core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2 kornia==0.9.0 kornia_rs==0.2.0
du -sh .gpu
tree=$(( $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) + $(du -sb .gpu | cut -f1) ))
echo "prepare: the run call will carry $((tree / 2**20)) MiB (git's files + .gpu; the limit is 64 MiB)"
[ "$tree" -lt $((64 * 2**20)) ] || { echo "prepare: over the device tool's 64 MiB"; exit 1; }
echo 'prepare: done; now call the device tool: run(command="bash benchmarks/gpu/check.sh", carry=[".gpu"], timeout_s=570)'
