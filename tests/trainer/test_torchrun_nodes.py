"""`segtrack train` unchanged under `torchrun --nnodes 2` with a c10d rendezvous: two "hosts"
(two launchers on this machine, one process each, meeting at a TCP endpoint as launchers on
separate hosts do) train one run together; the global rank 0 alone writes its files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.own_servers import free_port
from trainer.data.demo import make_demo_dataset

LIMIT_S = 240


def test_two_nodes_meet_at_a_c10d_rendezvous_and_rank_0_alone_writes(tmp_path: Path) -> None:
    demo = make_demo_dataset(tmp_path / "demo", count=16, size=32, seed=0)
    epochs = 2
    config = tmp_path / "tiny.json"
    config.write_text(
        json.dumps(
            {
                "dataset": str(demo.root),
                "image_size": [32, 32],
                "base_channels": 8,
                "depth": 2,
                "epochs": epochs,
                "batch_size": 4,
                "num_workers": 0,
                "augment": "none",
                "preview_count": 1,
                "device": "cpu",
            }
        )
    )
    endpoint = f"127.0.0.1:{free_port()}"
    environment = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
    nodes = []
    for node in range(2):
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
        launcher += ["--nproc-per-node", "1", "--rdzv-backend", "c10d"]
        launcher += ["--rdzv-endpoint", endpoint, "--rdzv-id", "two-nodes"]
        command = [*launcher, "-m", "segtrack", "train", str(config)]
        command += ["--out", str(tmp_path / f"node{node}")]
        nodes.append(
            subprocess.Popen(
                command,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for process in nodes:
            output, _ = process.communicate(timeout=LIMIT_S)
            outputs.append(output)
            assert process.returncode == 0, output[-3000:]
    finally:
        for process in nodes:
            process.kill()

    writers = [node for node in range(2) if (tmp_path / f"node{node}" / "best.pt").exists()]
    assert len(writers) == 1, outputs  # the global rank 0, wherever the rendezvous put it
    out = tmp_path / f"node{writers[0]}"
    with (out / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == list(range(1, epochs + 1))
    checkpoint = torch.load(out / "last.pt", weights_only=False)
    assert checkpoint["epoch"] == epochs
    assert "2 processes train together" in outputs[writers[0]]
