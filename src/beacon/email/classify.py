"""Telling machine opens and scanner clicks from people, without dropping anything.

Every open and click is recorded; the ones this module attributes to a
machine carry ``machine = 1`` and a short reason, so statistics show human
and machine numbers side by side. The rules, in order (the first that
matches gives the reason):

Opens
    ``image-proxy:google``
        Gmail's image proxy (``GoogleImageProxy``, ``ggpht.com``). It fetches
        the image when the message is displayed and caches it, so it marks
        "opened at least once" but hides who and how often.
    ``image-proxy:yahoo``
        Yahoo Mail's proxy (``YahooMailProxy``).
    ``image-proxy:apple``
        Apple Mail Privacy Protection, which downloads every image when the
        message is delivered, read or not. Its fetches send the bare
        User-Agent ``Mozilla/5.0``; Apple's IP ranges would say more, but IP
        addresses are never kept, so the User-Agent is the only signal.
    ``scanner:<vendor>``, ``bot``, ``no-user-agent``, ``head-request``
        As for clicks. (Outlook for Windows loads images with an ``ms-office``
        User-Agent while someone reads: those opens stay human.)

Clicks
    ``head-request``
        A ``HEAD`` request: browsers never click with ``HEAD``; link checkers do.
    ``office-prefetch``
        Microsoft Office's link and protocol discovery (``ms-office``,
        ``MSOffice``, ``Microsoft Office Existence Discovery`` / ``Protocol
        Discovery``): when a link is clicked in Outlook or Word, Office first
        fetches it itself, then hands it to the browser, whose request is the
        reader's.
    ``scanner:<vendor>``
        A mail-security gateway that follows links to check them (Barracuda,
        Mimecast, Proofpoint, Microsoft Defender / Safe Links, Cisco IronPort,
        Trend Micro, Symantec / Broadcom, Forcepoint, Sophos, FireEye /
        Trellix, Zscaler, Fortinet, SpamTitan, Check Point / Avanan,
        Bitdefender, Kaspersky, ESET, Hornetsecurity, Vade, Cloudmark,
        Libraesva), named by its User-Agent.
    ``bot``
        Any User-Agent the crawler-user-agents patterns recognize (HTTP
        libraries, crawlers, monitors).
    ``no-user-agent``
        No User-Agent at all.
    ``burst``
        A click on one link of a message less than ``burst_seconds`` (default
        2 s) after the open of the same message or after a click on *another*
        link of it: people read before they click and cannot follow two links
        that fast; sandboxes that open every link of a message do. Clicking
        the same link twice is not a burst. The first click of a burst that
        came without an open cannot be told apart when it arrives and counts
        as human; the following ones are flagged.

Recent activity per message (campaign, recipient reference) lives in a
bounded in-process cache with a time to live of ``burst_seconds``: with
several worker processes, each process only sees the requests it served, so a
burst split across workers is partly missed. Nothing here is stored.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import crawleruseragents

from beacon.email.exceptions import InstrumentationError

__all__ = [
    "DEFAULT_BURST_SECONDS",
    "DEFAULT_MAX_MESSAGES",
    "MachineClassifier",
    "MachineVerdict",
    "user_agent_reason",
]

#: Clicks closer than this to the open or to a click on another link are a burst.
DEFAULT_BURST_SECONDS = 2.0
#: How many messages' recent activity the cache keeps (least recently used go first).
DEFAULT_MAX_MESSAGES = 100_000

_IMAGE_PROXIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("image-proxy:google", re.compile(r"googleimageproxy|ggpht\.com", re.IGNORECASE)),
    ("image-proxy:yahoo", re.compile(r"yahoomailproxy", re.IGNORECASE)),
)
_APPLE_MPP_USER_AGENT = "Mozilla/5.0"
_OFFICE_PREFETCH = re.compile(
    r"\bms-office\b|\bmsoffice\b|microsoft office (?:existence|protocol) discovery",
    re.IGNORECASE,
)
_SCANNERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (f"scanner:{vendor}", re.compile(pattern, re.IGNORECASE))
    for vendor, pattern in (
        ("barracuda", r"\bbarracuda"),
        ("mimecast", r"\bmimecast"),
        ("proofpoint", r"\bproofpoint|\burldefense"),
        ("microsoft", r"\bsafelinks?\b|\bmicrosoft[ -]defender|\bmsdefender"),
        ("cisco", r"\bironport\b|\bcisco[ -]?(?:secure[ -]?email|esa)"),
        ("trendmicro", r"\btrend ?micro\b"),
        ("symantec", r"\bsymantec\b|\bmessagelabs\b|\bbroadcom\b"),
        ("forcepoint", r"\bforcepoint\b|\bwebsense\b"),
        ("sophos", r"\bsophos\b"),
        ("fireeye", r"\bfireeye\b|\btrellix\b"),
        ("zscaler", r"\bzscaler\b"),
        ("fortinet", r"\bforti(?:net|guard|mail)\b"),
        ("spamtitan", r"\bspamtitan\b"),
        ("checkpoint", r"\bcheck ?point\b|\bavanan\b"),
        ("bitdefender", r"\bbitdefender\b"),
        ("kaspersky", r"\bkaspersky\b"),
        ("eset", r"\beset\b"),
        ("hornetsecurity", r"\bhornet ?security\b"),
        ("vade", r"\bvade ?(?:secure|retro)?\b"),
        ("cloudmark", r"\bcloudmark\b"),
        ("libraesva", r"\blibraesva\b"),
    )
)


@lru_cache(maxsize=4096)
def user_agent_reason(user_agent: str, *, for_open: bool) -> str:
    """Why this User-Agent is a machine (a reason of the module docs), or ``""``.

    Image-proxy rules apply to opens only (``for_open``); the other rules to
    both. Cached: classifying a known User-Agent again costs a dictionary look-up.
    """
    agent = user_agent.strip()
    if not agent:
        return "no-user-agent"
    if for_open:
        for reason, pattern in _IMAGE_PROXIES:
            if pattern.search(agent):
                return reason
        if agent == _APPLE_MPP_USER_AGENT:
            return "image-proxy:apple"
    elif _OFFICE_PREFETCH.search(agent):
        return "office-prefetch"
    for reason, pattern in _SCANNERS:
        if pattern.search(agent):
            return reason
    if crawleruseragents.is_crawler(agent):
        return "bot"
    return ""


@dataclass(frozen=True, slots=True)
class MachineVerdict:
    """The classification of one open or click: ``machine`` and why (``reason``)."""

    machine: bool
    reason: str = ""


_HUMAN = MachineVerdict(machine=False)


@dataclass(slots=True)
class _MessageActivity:
    seen: float
    last_open: float | None = None
    clicks: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))


class MachineClassifier:
    """Classifies opens and clicks; remembers recent activity per message.

    ``clock`` returns seconds on a monotonic scale (injected in tests);
    ``burst_seconds`` is the burst window; ``max_messages`` bounds the
    activity cache. Thread-safe.
    """

    def __init__(
        self,
        *,
        burst_seconds: float = DEFAULT_BURST_SECONDS,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not burst_seconds > 0:
            raise InstrumentationError("burst_seconds must be a positive number of seconds")
        if max_messages < 1:
            raise InstrumentationError("max_messages must be at least 1")
        self.burst_seconds = float(burst_seconds)
        self.max_messages = max_messages
        self._clock = clock
        self._messages: OrderedDict[tuple[str, int], _MessageActivity] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many messages have recent activity in the cache."""
        with self._lock:
            return len(self._messages)

    def _activity(self, key: tuple[str, int], now: float) -> _MessageActivity:
        horizon = now - self.burst_seconds
        messages = self._messages
        while messages:
            oldest = next(iter(messages.values()))
            if oldest.seen >= horizon and len(messages) < self.max_messages:
                break
            messages.popitem(last=False)
        activity = messages.pop(key, None)
        if activity is None or activity.seen < horizon:
            activity = _MessageActivity(seen=now)
        activity.seen = now
        messages[key] = activity
        return activity

    def classify_open(
        self, *, campaign: str, recipient: int, user_agent: str, method: str = "GET"
    ) -> MachineVerdict:
        """Classify an open of ``campaign`` by ``recipient`` and remember it."""
        now = self._clock()
        with self._lock:
            self._activity((campaign, recipient), now).last_open = now
        if method.upper() == "HEAD":
            return MachineVerdict(machine=True, reason="head-request")
        reason = user_agent_reason(user_agent, for_open=True)
        return MachineVerdict(machine=True, reason=reason) if reason else _HUMAN

    def classify_click(
        self, *, campaign: str, recipient: int, link: int, user_agent: str, method: str = "GET"
    ) -> MachineVerdict:
        """Classify a click on link ``link`` of ``campaign`` by ``recipient`` and remember it."""
        now = self._clock()
        horizon = now - self.burst_seconds
        with self._lock:
            activity = self._activity((campaign, recipient), now)
            burst = (activity.last_open is not None and activity.last_open > horizon) or any(
                at > horizon and other != link for at, other in activity.clicks
            )
            activity.clicks.append((now, link))
        if method.upper() == "HEAD":
            return MachineVerdict(machine=True, reason="head-request")
        reason = user_agent_reason(user_agent, for_open=False)
        if reason:
            return MachineVerdict(machine=True, reason=reason)
        return MachineVerdict(machine=True, reason="burst") if burst else _HUMAN
