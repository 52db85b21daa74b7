"""User-Agent classification: the few coarse values stored instead of the User-Agent.

A User-Agent string is reduced to a browser family, an OS family, a device
class (``desktop``, ``mobile``, ``tablet``, ``bot`` or ``unknown``) and a bot
flag; the string itself is never stored. Parsing uses ua-parser with its
fastest available backend (ua-parser-rs when installed, ~20 µs per new
string instead of ~1 ms for the pure-Python one), the device rules of the
``user-agents`` package, and the crawler-user-agents patterns compiled once
into a single matcher (a Rust regex set with ua-parser-rs). Results are kept in an LRU cache, so a
returning browser costs a dictionary lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import crawleruseragents
import ua_parser
from user_agents.parsers import UserAgent, parse_browser, parse_device, parse_operating_system

__all__ = ["CACHE_SIZE", "MAX_USER_AGENT_LENGTH", "DeviceClass", "UserAgentInfo", "classify"]

DeviceClass = Literal["desktop", "mobile", "tablet", "bot", "unknown"]

#: Distinct User-Agent strings whose classification is kept in memory.
CACHE_SIZE = 4096
#: Longer User-Agent strings are cut before parsing (real ones are far shorter).
MAX_USER_AGENT_LENGTH = 512

_parser = ua_parser.Parser(ua_parser.BestAvailableResolver(ua_parser.load_builtins()))

_PATTERN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9 ._-]*[A-Za-z0-9]")


def _pattern_name(pattern: str) -> str:
    found = _PATTERN_NAME.search(pattern.replace("\\", ""))
    return found.group(0) if found else "bot"


_CRAWLER_PATTERNS: tuple[tuple[str, str], ...] = tuple(
    (entry["pattern"], _pattern_name(entry["pattern"]))
    for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA
)


def _crawler_matcher() -> Callable[[str], str | None]:
    """One matcher over every crawler pattern: the Rust regex set when available."""
    try:
        import ua_parser_rs
    except ImportError:
        combined = re.compile("|".join(f"(?:{p})" for p, _ in _CRAWLER_PATTERNS))

        def search(user_agent: str) -> str | None:
            if not combined.search(user_agent):
                return None
            return next(name for p, name in _CRAWLER_PATTERNS if re.search(p, user_agent))

        return search
    extractor = ua_parser_rs.UserAgentExtractor(
        (pattern, name, None, None, None, None) for pattern, name in _CRAWLER_PATTERNS
    )

    def extract(user_agent: str) -> str | None:
        found = extractor.extract(user_agent)
        return str(found.family) if found is not None else None

    return extract


_crawler_name = _crawler_matcher()


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """What is kept of a User-Agent: coarse families, never the string."""

    browser: str
    os: str
    device: DeviceClass
    is_bot: bool


class _ParsedUserAgent(UserAgent):  # type: ignore[misc]
    """``user_agents.UserAgent`` fed by the fast ua-parser result instead of its slow parser."""

    def __init__(self, user_agent: str, result: Any) -> None:
        agent, system, device = result.user_agent, result.os, result.device
        self.ua_string = user_agent
        self.browser = (
            parse_browser(agent.family, agent.major, agent.minor, agent.patch)
            if agent is not None
            else parse_browser("Other")
        )
        self.os = (
            parse_operating_system(system.family, system.major, system.minor, system.patch)
            if system is not None
            else parse_operating_system("Other")
        )
        self.device = (
            parse_device(device.family, device.brand, device.model)
            if device is not None
            else parse_device("Other", None, None)
        )


@lru_cache(maxsize=CACHE_SIZE)
def _classify(user_agent: str) -> UserAgentInfo:
    if not user_agent.strip():
        return UserAgentInfo(browser="", os="", device="unknown", is_bot=False)
    parsed = _ParsedUserAgent(user_agent, _parser.parse(user_agent))
    browser = parsed.browser.family or "Other"
    system = parsed.os.family or "Other"
    crawler = _crawler_name(user_agent)
    if parsed.is_bot or crawler is not None:
        name = browser if browser != "Other" else (crawler or "bot")
        return UserAgentInfo(browser=name, os=system, device="bot", is_bot=True)
    device: DeviceClass
    if parsed.is_tablet:
        device = "tablet"
    elif parsed.is_mobile:
        device = "mobile"
    elif parsed.is_pc:
        device = "desktop"
    else:
        device = "unknown"
    return UserAgentInfo(browser=browser, os=system, device=device, is_bot=False)


def classify(user_agent: str) -> UserAgentInfo:
    """Classify a User-Agent string (cached; strings are cut at 512 characters)."""
    return _classify(user_agent[:MAX_USER_AGENT_LENGTH])
