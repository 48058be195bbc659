#!/usr/bin/env bash
# On a CUDA machine, in under 8 minutes: every @pytest.mark.gpu test, then the GPU throughput table
# (bench/train_throughput.py: end to end, model only, loader, per precision) and, with two or more
# GPUs, images/s on 1 and 2 processes. Prepare the wheels here first with bench/gpu_wheels.sh and
# carry .whl; the machine's own python3 (with CUDA torch) runs everything.
#
#     bench/gpu_wheels.sh                       # here
#     bash bench/gpu_check.sh                   # there, carrying .whl
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

if [ -d .whl ]; then
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/segtrack-site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/segtrack-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "GPUs", torch.cuda.device_count())'
status=0

echo "== GPU tests"
# The trainer's tests only: --confcutdir keeps out the database fixtures of tests/conftest.py.
timeout 200 "$python" -m pytest tests/trainer -m gpu -q -p no:cacheprovider \
    --confcutdir=tests/trainer || status=1

echo "== throughput table (959x640, Carvana-shaped)"
timeout 200 "$python" bench/train_throughput.py --images 96 --modes off,bf16 || status=1

gpus=$("$python" -c 'import torch; print(torch.cuda.device_count())')
if [ "$gpus" -ge 2 ]; then
    echo "== scaling: 1 and 2 processes"
    timeout 120 "$python" bench/train_throughput.py --images 96 --modes bf16 --no-compile --nproc 2 \
        || status=1
fi
exit $status
