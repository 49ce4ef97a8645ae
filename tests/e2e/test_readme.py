"""The README's example block, run as written against a live catalog and cart."""

import pytest

from tests.support.readme_examples import check_readme_output, run_readme_examples

pytestmark = pytest.mark.e2e


async def test_readme_examples_work_as_written(demo_system):
    catalog, cart = demo_system
    check_readme_output(await run_readme_examples(catalog, cart))
