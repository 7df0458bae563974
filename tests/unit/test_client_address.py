"""The client address the rate limit and every per-client cap count: which proxies are trusted to name it
(DISTILBOT_TRUSTED_PROXIES), and the key an address counts under. (Real servers behind the real nginx
configuration: tests/e2e/test_client_address.py.)"""

from __future__ import annotations

import pytest

from bot.infra.settings import Settings


def test_trusted_proxies_take_addresses_and_ranges_and_refuse_a_wildcard(monkeypatch):
    monkeypatch.setenv("DISTILBOT_TRUSTED_PROXIES", "10.0.0.0/8, 172.30.80.0/24,127.0.0.1,::1")
    assert [str(n) for n in Settings().trusted_proxies] == ["10.0.0.0/8", "172.30.80.0/24", "127.0.0.1/32",
                                                            "::1/128"]
    monkeypatch.setenv("DISTILBOT_TRUSTED_PROXIES", '["10.1.0.0/16"]')  # as `bot serve` passes it to its workers
    assert [str(n) for n in Settings().trusted_proxies] == ["10.1.0.0/16"]
    monkeypatch.delenv("DISTILBOT_TRUSTED_PROXIES")
    assert Settings().trusted_proxies == []
    for bad, message in (("*", "would trust any client"), ("10.0.0.1/8", "not a valid IPv4 or IPv6 network"),
                         ("proxy.internal", "not a valid IPv4 or IPv6 network")):
        monkeypatch.setenv("DISTILBOT_TRUSTED_PROXIES", bad)
        with pytest.raises(ValueError, match=message):
            Settings()


def test_an_ipv6_client_counts_by_its_64_network_and_an_ipv4_mapped_one_by_its_ipv4_address():
    """One subscriber commonly holds a whole /64: rotating addresses inside it must not reset the limits."""
    from bot.infra.guards import client_key

    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.7") == client_key("203.0.113.7") == "203.0.113.7"
    assert client_key(None) == "unknown"
