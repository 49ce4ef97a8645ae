import msgspec
import pytest

from shared.errors import FieldError
from shared.http.json_io import field_error


class Item(msgspec.Struct, forbid_unknown_fields=True):
    qty: int


class Order(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    items: list[Item] = []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"name": 1}', "name"),
        (b'{"name": "a", "items": [{"qty": "x"}]}', "items[0].qty"),
        (b'{"name": "a", "typo": 1}', "typo"),
        (b"{}", "name"),
        (b'{"name": "a", "items": [{}]}', "items[0].qty"),
        (b"[1]", "(body)"),
    ],
)
def test_field_error_names_the_field(raw, field):
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(raw, type=Order)
    error = field_error(caught.value)
    assert isinstance(error, FieldError)
    assert error.field == field
    assert "$." not in error.message
