import ipaddress

import pytest

from shared.ratelimit.identity import client_ip
from shared.ratelimit.spec import Limit, parse_limits, parse_networks


def test_limits_parse():
    assert parse_limits("600/60") == (Limit(600, 60),)
    assert parse_limits(" 600/60 , 20/1 ") == (Limit(600, 60), Limit(20, 1))
    assert parse_limits("100000/60") == (Limit(100_000, 60),)  # the largest a log may hold


@pytest.mark.parametrize(
    "spec", ["", "600", "0/60", "60/0", "a/b", "600/60,10/60", "-1/60", "1.5/60", "100001/60"]
)
def test_bad_limits_are_refused(spec):
    with pytest.raises(ValueError):
        parse_limits(spec)


def test_networks_parse():
    assert parse_networks("") == ()
    assert parse_networks("10.0.0.0/8, 192.168.1.5") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.5/32"),
    )
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8,proxy.internal")


def scope(peer: str, forwarded: str | None = None) -> dict:
    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    return {"type": "http", "client": (peer, 5000), "headers": headers}


def test_forwarded_for_is_ignored_from_untrusted_peers():
    assert client_ip(scope("203.0.113.9", "1.2.3.4"), ()) == "203.0.113.9"
    assert client_ip(scope("203.0.113.9", "1.2.3.4"), parse_networks("10.0.0.0/8")) == "203.0.113.9"


def test_the_nearest_untrusted_hop_is_the_client():
    trusted = parse_networks("10.0.0.0/8")
    # A client can write anything at the left of the header; only the hops our proxies add count.
    assert client_ip(scope("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.1"), trusted) == "198.51.100.7"
    assert client_ip(scope("10.0.0.2", "10.0.0.9"), trusted) == "10.0.0.2"
    assert client_ip(scope("10.0.0.2"), trusted) == "10.0.0.2"


def test_bad_rate_limit_setting_names_the_variable():
    from shared.config import Settings, SettingsError, load_settings

    with pytest.raises(SettingsError) as caught:
        load_settings(Settings, {"ENV": "development", "RATE_LIMIT_WRITES": "lots"})
    assert caught.value.variable == "RATE_LIMIT_WRITES"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lots", "'lots' is not <requests>/<seconds> (e.g. 600/60)"),
        (" 100001/60 ", "'100001/60': at most 100000 requests per window"),
        ("600/60,10/60", "two limits share a window; give each window once"),
    ],
)
def test_a_bad_limit_says_what_is_wrong(spec, message):
    with pytest.raises(ValueError) as caught:
        parse_limits(spec)
    assert str(caught.value) == message


def test_a_network_may_be_written_with_host_bits():
    assert parse_networks("10.0.0.1/8") == (ipaddress.ip_network("10.0.0.0/8"),)
    with pytest.raises(ValueError) as caught:
        parse_networks("10.0.0.0/8, proxy.internal")
    assert str(caught.value) == "'proxy.internal' is not an IP address or network"


def test_an_unparseable_address_is_never_trusted():
    trusted = parse_networks("10.0.0.0/8")
    # A peer without an address (a Unix socket) is not a proxy: its header is not believed.
    assert client_ip({"type": "http", "headers": [(b"x-forwarded-for", b"1.2.3.4")]}, trusted) == "unknown"
    # A hop that is not an address is not one of our proxies: it is the client as far as we know.
    assert client_ip(scope("10.0.0.2", "1.2.3.4, not-an-ip, 10.0.0.1"), trusted) == "not-an-ip"
