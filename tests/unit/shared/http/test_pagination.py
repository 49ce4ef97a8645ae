import pytest

from shared.http.pagination import decode_cursor, encode_cursor
from shared.http.problems import InvalidQuery


def test_cursor_round_trips():
    assert decode_cursor(encode_cursor(12345)) == 12345


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "abc",
        "!!!",
        encode_cursor(1)[:-2],
        "eyJhZnRlciI6LTF9",  # {"after":-1}
        "eyJ4IjoxfQ",  # {"x":1}
        "eyJhZnRlciI6MTg0NDY3NDQwNzM3MDk1NTE2MTV9",  # {"after":2**64-1}: past bigint
    ],
)
def test_foreign_cursor_is_a_400_naming_cursor(cursor):
    with pytest.raises(InvalidQuery) as caught:
        decode_cursor(cursor)
    assert caught.value.errors[0].field == "cursor"
