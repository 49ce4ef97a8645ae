"""Keyset cursors: what we issue comes back as the same position; anything else is a 400."""

import pytest

from shared.http.pagination import decode_cursor, decode_ranked_cursor, encode_cursor
from shared.http.problems import InvalidQuery


def test_cursor_round_trips():
    assert decode_cursor(encode_cursor(12345)) == 12345


def test_a_ranked_cursor_round_trips_its_score_exactly():
    score = 0.3333333432674408  # a float4 score as PostgreSQL returns it
    assert decode_ranked_cursor(encode_cursor(77, score)) == (score, 77)


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
        encode_cursor(1, 0.5),  # a search's cursor, given to a listing
    ],
)
def test_foreign_cursor_is_a_400_naming_cursor(cursor):
    with pytest.raises(InvalidQuery) as caught:
        decode_cursor(cursor)
    assert caught.value.errors[0].field == "cursor"


@pytest.mark.parametrize("cursor", [encode_cursor(1), "eyJhZnRlciI6MSwic2NvcmUiOiJ4In0", "abc"])
def test_a_listing_or_foreign_cursor_given_to_a_search_is_a_400(cursor):
    with pytest.raises(InvalidQuery) as caught:
        decode_ranked_cursor(cursor)
    assert "start again without it" in caught.value.detail
