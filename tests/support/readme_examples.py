"""The README's example block, run as written against live services, and what its output must
show (the README's flow: browsing, a price change and its 409, problems, the shopping flow)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio

from tests.support.env import TEST_JWT_SECRET

ROOT = Path(__file__).resolve().parents[2]


def readme_examples() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- readme-examples:start -->\n```sh\n(.*?)```\n<!-- readme-examples:end -->", text, re.S
    )
    assert block, "the README lost its examples block"
    return block.group(1)


async def run_readme_examples(catalog: str, cart: str) -> str:
    """Run the block with its CATALOG and CART set to these base URLs; its output."""
    script = readme_examples()
    for line in ("CATALOG=http://localhost:8001\n", "CART=http://localhost:8002\n"):
        assert line in script
    script = script.replace("CATALOG=http://localhost:8001\n", f"CATALOG={catalog}\n")
    script = script.replace("CART=http://localhost:8002\n", f"CART={cart}\n")
    env = {**os.environ, "JWT_SECRET": TEST_JWT_SECRET, "ENV": "test"}
    with anyio.fail_after(120):
        command = ["bash", "-euo", "pipefail", "-c", script]
        result = await anyio.run_process(command, cwd=ROOT, env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def check_readme_output(out: str) -> None:
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
