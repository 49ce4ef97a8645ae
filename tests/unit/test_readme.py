"""The README documents every setting a service reads."""

import re
from pathlib import Path

from app_cart.settings import CartSettings
from app_product.settings import CatalogSettings
from shared.config import variables

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", README, re.M))
    assert set(variables(CatalogSettings)) | set(variables(CartSettings)) <= documented
