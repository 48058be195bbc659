"""A job process that never finishes by itself (`python -m tests.integration.sleepy_job_child
JOB_DIR`): it writes its pid to `JOB_DIR/pid` and sleeps, so a test can cancel a job while it is
really running and see its process stopped."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> int:
    folder = Path(sys.argv[1])
    (folder / "pid").write_text(str(os.getpid()), encoding="utf-8")
    while True:
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
