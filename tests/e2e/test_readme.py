"""The README's example block, run as written against a live catalog process."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TEST_JWT_SECRET

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def readme_examples() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- readme-examples:start -->\n```sh\n(.*?)```\n<!-- readme-examples:end -->", text, re.S
    )
    assert block, "the README lost its examples block"
    return block.group(1)


def test_readme_examples_work_as_written(demo_catalog_process):
    base, _ = demo_catalog_process
    script = readme_examples()
    assert "CATALOG=http://localhost:8001\n" in script
    script = script.replace("CATALOG=http://localhost:8001\n", f"CATALOG={base}\n")
    env = {**os.environ, "JWT_SECRET": TEST_JWT_SECRET, "ENV": "test"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"missing":[999999]' in out
    assert '"price":"139.00"' in out
    assert "problem:stale-version" in out
    assert '"field":"price"' in out
    assert '"status":401' in out
    assert "HTTP/1.1 200" in out and '"status":"ready"' in out
