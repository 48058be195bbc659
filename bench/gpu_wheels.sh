#!/usr/bin/env bash
# Run here, before a GPU check: downloads into .whl/ (git-ignored) the Python 3.12 wheels of the
# trainer's dependencies that the GPU machine's image lacks (it has torch, numpy, pillow, tifffile,
# pyyaml, tqdm, opencv, pytest, psutil and nvidia-ml-py, and reaches no package registry).
# The versions are the ones installed in .venv, so both machines run the same code.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(albumentations albucore pydantic pydantic-core annotated-types typing-inspection simsimd stringzilla)
pins=()
for name in "${packages[@]}"; do
    version=$(.venv/bin/python -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    pins+=("${name}${version:+==$version}")
done
rm -rf .whl
.venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${pins[@]}"
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
du -sh .whl
