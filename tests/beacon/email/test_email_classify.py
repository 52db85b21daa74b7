"""Machine opens and scanner clicks: User-Agent rules, HEAD, bursts, the bounded cache."""

from __future__ import annotations

import pytest

from beacon.email.classify import MachineClassifier, user_agent_reason
from beacon.email.exceptions import InstrumentationError

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
OUTLOOK_DESKTOP = (
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; "
    "Microsoft Outlook 16.0.17928; ms-office; MSOffice 16)"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("user_agent", "for_open", "reason"),
    [
        (FIREFOX, True, ""),
        (IPHONE, True, ""),
        (GMAIL_PROXY, True, "image-proxy:google"),
        (YAHOO_PROXY, True, "image-proxy:yahoo"),
        ("Mozilla/5.0", True, "image-proxy:apple"),
        ("  Mozilla/5.0 ", True, "image-proxy:apple"),
        ("Mozilla/5.0", False, ""),
        (GMAIL_PROXY, False, "bot"),
        (OUTLOOK_DESKTOP, False, "office-prefetch"),
        (OUTLOOK_DESKTOP, True, ""),
        ("Microsoft Office Existence Discovery", False, "office-prefetch"),
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", False, "scanner:barracuda"),
        ("Mimecast-URL-Protect/1.0", False, "scanner:mimecast"),
        ("Proofpoint URL Defense", False, "scanner:proofpoint"),
        ("Mozilla/5.0 SafeLinks", False, "scanner:microsoft"),
        ("Cisco IronPort URL checker", False, "scanner:cisco"),
        ("python-requests/2.32.3", False, "bot"),
        ("curl/8.5.0", True, "bot"),
        ("", False, "no-user-agent"),
        ("   ", True, "no-user-agent"),
        ("Mozilla/5.0 (X11; Linux x86_64) Preset/1.0", False, ""),
    ],
    ids=[
        "firefox", "iphone-mail", "gmail-proxy", "yahoo-proxy", "apple-mpp", "apple-mpp-spaces",
        "bare-mozilla-click", "gmail-proxy-click", "outlook-link-check", "outlook-image-load",
        "office-discovery",
        "barracuda", "mimecast", "proofpoint", "safelinks", "ironport", "http-library", "curl",
        "empty", "blank", "word-reset-is-not-eset",
    ],
)  # fmt: skip
def test_user_agent_reasons(user_agent: str, for_open: bool, reason: str) -> None:
    assert user_agent_reason(user_agent, for_open=for_open) == reason


def test_head_is_always_a_machine() -> None:
    classifier = MachineClassifier(clock=FakeClock())
    click = classifier.classify_click(
        campaign="c", recipient=1, link=0, user_agent=FIREFOX, method="HEAD"
    )
    opened = classifier.classify_open(campaign="c", recipient=2, user_agent=FIREFOX, method="head")
    assert (click.machine, click.reason) == (True, "head-request")
    assert (opened.machine, opened.reason) == (True, "head-request")


def test_human_reads_then_clicks() -> None:
    clock = FakeClock()
    classifier = MachineClassifier(clock=clock)
    assert not classifier.classify_open(campaign="c", recipient=7, user_agent=FIREFOX).machine
    clock.advance(40)
    assert not classifier.classify_click(
        campaign="c", recipient=7, link=1, user_agent=FIREFOX
    ).machine
    clock.advance(55)
    assert not classifier.classify_click(
        campaign="c", recipient=7, link=4, user_agent=FIREFOX
    ).machine


def test_click_right_after_the_open_is_a_burst() -> None:
    clock = FakeClock()
    classifier = MachineClassifier(clock=clock)
    classifier.classify_open(campaign="c", recipient=7, user_agent=FIREFOX)
    clock.advance(0.5)
    verdict = classifier.classify_click(campaign="c", recipient=7, link=0, user_agent=FIREFOX)
    assert (verdict.machine, verdict.reason) == (True, "burst")


def test_every_link_within_a_second_without_open() -> None:
    clock = FakeClock()
    classifier = MachineClassifier(clock=clock)
    verdicts = []
    for link in range(5):
        verdicts.append(
            classifier.classify_click(campaign="c", recipient=9, link=link, user_agent=FIREFOX)
        )
        clock.advance(0.2)
    # The first click of a burst cannot be judged when it arrives; the rest are flagged.
    assert [v.machine for v in verdicts] == [False, True, True, True, True]


def test_same_link_twice_is_not_a_burst() -> None:
    clock = FakeClock()
    classifier = MachineClassifier(clock=clock)
    classifier.classify_click(campaign="c", recipient=3, link=2, user_agent=FIREFOX)
    clock.advance(0.3)
    assert not classifier.classify_click(
        campaign="c", recipient=3, link=2, user_agent=FIREFOX
    ).machine


def test_bursts_are_per_message() -> None:
    clock = FakeClock()
    classifier = MachineClassifier(clock=clock)
    classifier.classify_open(campaign="c", recipient=1, user_agent=FIREFOX)
    other_recipient = classifier.classify_click(
        campaign="c", recipient=2, link=0, user_agent=FIREFOX
    )
    other_campaign = classifier.classify_click(
        campaign="d", recipient=1, link=0, user_agent=FIREFOX
    )
    assert not other_recipient.machine
    assert not other_campaign.machine


def test_window_is_configurable_and_expires() -> None:
    clock = FakeClock()
    classifier = MachineClassifier(clock=clock, burst_seconds=10)
    classifier.classify_open(campaign="c", recipient=1, user_agent=FIREFOX)
    clock.advance(9)
    assert classifier.classify_click(campaign="c", recipient=1, link=0, user_agent=FIREFOX).machine
    clock.advance(30)
    assert not classifier.classify_click(
        campaign="c", recipient=1, link=1, user_agent=FIREFOX
    ).machine


def test_cache_is_bounded_and_expires() -> None:
    clock = FakeClock()
    classifier = MachineClassifier(clock=clock, max_messages=3)
    for recipient in range(1, 6):
        classifier.classify_open(campaign="c", recipient=recipient, user_agent=FIREFOX)
    assert len(classifier) == 3
    # The least recently used message was evicted: its open is forgotten.
    assert not classifier.classify_click(
        campaign="c", recipient=1, link=0, user_agent=FIREFOX
    ).machine
    assert classifier.classify_click(campaign="c", recipient=5, link=0, user_agent=FIREFOX).machine
    clock.advance(60)
    classifier.classify_open(campaign="c", recipient=99, user_agent=FIREFOX)
    assert len(classifier) == 1


@pytest.mark.parametrize(
    "options", [{"burst_seconds": 0}, {"burst_seconds": -1}, {"max_messages": 0}]
)
def test_bad_settings_refused(options: dict[str, float]) -> None:
    with pytest.raises(InstrumentationError):
        MachineClassifier(**options)  # type: ignore[arg-type]
