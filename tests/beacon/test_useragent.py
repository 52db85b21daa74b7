"""User-Agent classification into coarse families and a device class."""

from __future__ import annotations

import pytest

from beacon.useragent import MAX_USER_AGENT_LENGTH, classify

CASES = [
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        ("Chrome", "Windows", "desktop", False),
        id="chrome-windows",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        ("Firefox", "Linux", "desktop", False),
        id="firefox-linux",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        ("Mobile Safari", "iOS", "mobile", False),
        id="iphone",
    ),
    pytest.param(
        "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.0 Mobile/15E148 Safari/604.1",
        ("Mobile Safari", "iOS", "tablet", False),
        id="ipad",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Mobile Safari/537.36",
        ("Chrome", "Android", "mobile", False),
        id="android-phone",
    ),
    pytest.param(
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ("Googlebot", "Other", "bot", True),
        id="googlebot",
    ),
    pytest.param(
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        ("AhrefsBot", "Other", "bot", True),
        id="crawler-list",
    ),
    pytest.param("python-requests/2.31.0", ("Python Requests", "Other", "bot", True), id="script"),
    pytest.param("", ("", "", "unknown", False), id="empty"),
]


@pytest.mark.parametrize(("agent", "expected"), CASES)
def test_user_agents_are_classified(agent: str, expected: tuple[str, str, str, bool]) -> None:
    info = classify(agent)
    assert (info.browser, info.os, info.device, info.is_bot) == expected


def test_classification_is_cached() -> None:
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
    assert classify(agent) is classify(agent)


def test_long_garbage_is_cut_and_classified() -> None:
    info = classify("\ufffd" * (MAX_USER_AGENT_LENGTH * 4))
    assert info.device in ("unknown", "bot")
