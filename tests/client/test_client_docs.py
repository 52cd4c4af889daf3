"""The example of docs/client.md runs as written against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.live import live_server

DOC = Path(__file__).parents[2] / "docs" / "client.md"


def test_the_docs_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    script = tmp_path / "example.py"
    script.write_text(blocks[0], encoding="utf-8")
    with live_server(tmp_path) as (base, key):
        env = dict(os.environ, CHAMELEON_URL=base, CHAMELEON_KEY=key)
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    assert "PENDING Done replayed: False" in done.stdout, done.stdout
    assert "verdict 1 fine" in done.stdout, done.stdout
