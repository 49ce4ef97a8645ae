import pytest

from shared.errors import InvalidQuery
from shared.pagination import decode_cursor, encode_cursor


def test_cursor_round_trips_and_is_opaque():
    cursor = encode_cursor(12345)
    assert "12345" not in cursor
    assert decode_cursor(cursor) == 12345


@pytest.mark.parametrize(
    "cursor", ["", "abc", "!!!", encode_cursor(1)[:-2], "eyJhZnRlciI6LTF9", "eyJ4IjoxfQ"]
)
def test_foreign_cursor_is_a_400_naming_cursor(cursor):
    with pytest.raises(InvalidQuery) as caught:
        decode_cursor(cursor)
    assert caught.value.errors[0].field == "cursor"
