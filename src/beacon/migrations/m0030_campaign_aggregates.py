"""Campaign aggregates behind the e-mail statistics, fed by materialized views.

``campaign_hourly`` holds, per campaign, site, event kind (open, click,
unsubscribe), UTC hour, link and ``machine`` flag (image-proxy opens, scanner
clicks): the number of events (``events``, a ``sum``) and the recipients
(``recipients``, a ``uniq`` state of the recipient reference: read it with
``uniqMerge(recipients)``). Because distinct counts are kept as states, a
campaign's unique openers, unique human clickers or unique clickers of one
link are exact unions whatever the grouping (hour, day, whole campaign).

``campaign_devices`` holds the same counts per device class, browser and OS
(no time: a campaign is itself a period).
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["CAMPAIGN_DEVICES", "CAMPAIGN_HOURLY", "statements"]

CAMPAIGN_HOURLY = "campaign_hourly"
CAMPAIGN_DEVICES = "campaign_devices"

_EMAIL_EVENTS = "kind IN ('open', 'click', 'unsubscribe') AND campaign != ''"
_COUNTS = (
    ("events", "SimpleAggregateFunction(sum, UInt64)"),
    ("recipients", "AggregateFunction(uniq, UInt64)"),
)
_COUNT_SELECT = "count() AS events, uniqStateIf(recipient, recipient != 0) AS recipients "


def statements(schema: Schema) -> list[str]:
    """Create the two campaign tables and the views that fill them from ``events``."""
    hourly_key = "campaign, site, kind, hour, link, machine"
    devices_key = "campaign, site, kind, machine, device, browser, os"
    return [
        *schema.create_table(
            CAMPAIGN_HOURLY,
            [
                ("campaign", "String"),
                ("site", "LowCardinality(String)"),
                ("kind", "LowCardinality(String)"),
                ("hour", "DateTime('UTC')"),
                ("link", "String"),
                ("machine", "UInt8"),
                *_COUNTS,
            ],
            engine="AggregatingMergeTree",
            partition_by="toYYYYMM(hour)",
            order_by=f"({hourly_key})",
            ttl=f"hour + INTERVAL {schema.retention_months} MONTH DELETE",
            sharding_key="cityHash64(campaign)",
        ),
        *schema.create_materialized_view(
            f"{CAMPAIGN_HOURLY}_mv",
            target=CAMPAIGN_HOURLY,
            source="events",
            select=(
                "SELECT campaign, site, toString(kind) AS kind, "
                "toStartOfHour(ts, 'UTC') AS hour, link, toUInt8(machine) AS machine, "
                f"{_COUNT_SELECT}FROM {{source}} WHERE {_EMAIL_EVENTS} GROUP BY {hourly_key}"
            ),
        ),
        *schema.create_table(
            CAMPAIGN_DEVICES,
            [
                ("campaign", "String"),
                ("site", "LowCardinality(String)"),
                ("kind", "LowCardinality(String)"),
                ("machine", "UInt8"),
                ("device", "LowCardinality(String)"),
                ("browser", "LowCardinality(String)"),
                ("os", "LowCardinality(String)"),
                *_COUNTS,
            ],
            engine="AggregatingMergeTree",
            order_by=f"({devices_key})",
            sharding_key="cityHash64(campaign)",
        ),
        *schema.create_materialized_view(
            f"{CAMPAIGN_DEVICES}_mv",
            target=CAMPAIGN_DEVICES,
            source="events",
            select=(
                "SELECT campaign, site, toString(kind) AS kind, toUInt8(machine) AS machine, "
                "toString(device) AS device, browser, os, "
                f"{_COUNT_SELECT}FROM {{source}} WHERE {_EMAIL_EVENTS} GROUP BY {devices_key}"
            ),
        ),
    ]
