"""The k-anonymity merge, checked on random click sets against a direct computation."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacon.events import PixelEvent
from beacon.migrations import migrate
from beacon.stats import OTHER, StatsQueries
from beacon.store import Store

from .stats_dataset import SITE, at, insert_events


@pytest.fixture(scope="module")
def clicks_store(chdb_path):
    """A database of its own: the random campaigns must not reach the shared dataset."""
    store = Store(f"chdb://{chdb_path}?database=stats_kanonymity")
    migrate(store)
    yield store
    store.command(f"DROP DATABASE IF EXISTS `{store.database}`")


clicks_strategy = st.lists(
    st.tuples(st.sampled_from("abcdef"), st.integers(min_value=1, max_value=12), st.booleans()),
    min_size=1,
    max_size=60,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(clicks=clicks_strategy, k=st.integers(min_value=1, max_value=6))
def test_rare_links_are_merged_and_nothing_is_lost(clicks_store, clicks, k):
    campaign = f"prop-{uuid.uuid4().hex[:10]}"
    insert_events(
        clicks_store,
        [
            PixelEvent(
                ts=at(10, 9, index % 60),
                site=SITE,
                kind="click",
                campaign=campaign,
                link=f"https://example.org/{link}",
                recipient=recipient,
                machine=machine,
            )
            for index, (link, recipient, machine) in enumerate(clicks)
        ],
    )
    people: dict[str, set[int]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for link, recipient, _ in clicks:
        people[f"https://example.org/{link}"].add(recipient)
        counts[f"https://example.org/{link}"] += 1
    rare = {link for link, who in people.items() if len(who) < k}

    rows = StatsQueries(clicks_store, k=k).campaign_links(campaign)

    by_link = {row.link: row for row in rows}
    assert sum(row.clicks for row in rows) == len(clicks)
    for link, row in by_link.items():
        if link == OTHER:
            assert row.unique == len(set().union(*(people[name] for name in rare)))
            assert row.clicks == sum(counts[name] for name in rare)
        else:
            assert link not in rare
            assert row.unique == len(people[link]) >= k
            assert row.clicks == counts[link]
    assert (OTHER in by_link) == bool(rare)
    assert rows[-1].link == OTHER or OTHER not in by_link  # "other" comes last
