"""The README's example block, run as written against a live catalog process."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.env import TEST_JWT_SECRET

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def readme_examples() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- readme-examples:start -->\n```sh\n(.*?)```\n<!-- readme-examples:end -->", text, re.S
    )
    assert block, "the README lost its examples block"
    return block.group(1)


def test_readme_examples_work_as_written(demo_system):
    catalog, cart = demo_system
    script = readme_examples()
    for line in ("CATALOG=http://localhost:8001\n", "CART=http://localhost:8002\n"):
        assert line in script
    script = script.replace("CATALOG=http://localhost:8001\n", f"CATALOG={catalog}\n")
    script = script.replace("CART=http://localhost:8002\n", f"CART={cart}\n")
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
    # The shopping flow: the replayed add left 2, the code applies, the move reached the cart.
    assert '"applies":true' in out and '"reason":"unknown"' in out
    final_cart = [line for line in out.splitlines() if '"applies":true' in line][-1]
    assert '"product_id":1' in final_cart and '"quantity":2' in final_cart and '"quantity":3' in final_cart
