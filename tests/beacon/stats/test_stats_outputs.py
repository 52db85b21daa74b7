"""The same exact numbers through every output: JSON API, CSV, dashboard HTML."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from urllib.parse import quote

import pytest

from .stats_dataset import CAMPAIGN, LINK_A, VIEWER, log_in

RANGE = "from=2026-11-01&to=2026-11-03"


@pytest.fixture
def api(client, stats_accounts):
    client.headers["Authorization"] = f"Bearer {stats_accounts[VIEWER[0]]}"
    return client


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_campaign_list_json_and_csv(api):
    rows = api.get("/stats/api/campaigns").json()["rows"]
    assert rows == [
        {
            "campaign": CAMPAIGN,
            "first_seen": "2026-11-02T08:00:00Z",
            "reached": 9,
            "opens": 10,
            "opens_unique": 8,
            "opens_human": 7,
            "opens_machine": 3,
            "clicks": 11,
            "clicks_unique": 8,
            "clicks_human": 9,
            "clicks_scanner": 2,
            "ctr": pytest.approx(7 / 9),
            "cto": pytest.approx(7 / 8),
            "unsubscribes": 1,
        }
    ]
    response = api.get("/stats/api/campaigns?format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="campaigns.csv"' in response.headers["content-disposition"]
    assert response.text.splitlines()[0] == (
        "campaign,first_seen,reached,opens,opens_unique,opens_human,opens_machine,clicks,"
        "clicks_unique,clicks_human,clicks_scanner,ctr,cto,unsubscribes"
    )
    assert response.text.splitlines()[1] == (
        f"{CAMPAIGN},2026-11-02T08:00:00Z,9,10,8,7,3,11,8,9,2,0.7778,0.8750,1"
    )


def test_campaign_detail_json(api):
    detail = api.get(f"/stats/api/campaigns/{quote(CAMPAIGN)}").json()
    summary = detail["summary"]
    assert summary["opens"] == {
        "total": 10,
        "unique": 8,
        "human": 7,
        "machine": 3,
        "unique_human": 6,
        "unique_machine": 3,
    }
    assert summary["clicks"]["scanner"] == 2
    assert summary["ctr"] == pytest.approx(7 / 9)
    assert detail["links"] == [
        {"link": LINK_A, "clicks": 9, "unique": 8, "human": 8, "scanner": 1, "unique_human": 7},
        {"link": "other", "clicks": 2, "unique": 2, "human": 1, "scanner": 1, "unique_human": 1},
    ]
    assert detail["devices"] == [
        {"value": "mobile", "events": 13, "uniques": 5},
        {"value": "other", "events": 3, "uniques": 2},
    ]
    assert len(detail["timeline"]) == 65
    assert detail["timeline"][0] == {
        "start": "2026-11-02T08:00:00Z",
        "granularity": "hour",
        "opens": 7,
        "opens_unique": 7,
        "opens_machine": 2,
        "clicks": 5,
        "clicks_unique": 3,
        "clicks_scanner": 2,
    }


def test_campaign_tables_as_csv(api):
    name = quote(CAMPAIGN)
    links = _csv(api.get(f"/stats/api/campaign-links/{name}?format=csv").text)
    assert links == [
        {"link": LINK_A, "clicks": "9", "unique": "8", "human": "8", "scanner": "1",
         "unique_human": "7"},
        {"link": "other", "clicks": "2", "unique": "2", "human": "1", "scanner": "1",
         "unique_human": "1"},
    ]  # fmt: skip
    devices = _csv(api.get(f"/stats/api/campaign-breakdown/os/{name}?format=csv").text)
    assert devices == [
        {"value": "iOS", "events": "13", "recipients": "5"},
        {"value": "other", "events": "3", "recipients": "2"},
    ]
    timeline = _csv(api.get(f"/stats/api/campaign-timeline/{name}?format=csv").text)
    assert timeline[-1] == {
        "start": "2026-11-05T00:00:00Z",
        "granularity": "day",
        "opens": "0",
        "opens_unique": "0",
        "opens_machine": "0",
        "clicks": "1",
        "clicks_unique": "1",
        "clicks_scanner": "0",
    }
    summary = _csv(api.get(f"/stats/api/campaigns/{name}?format=csv").text)
    assert summary[0]["opens_unique"] == "8"


def test_site_json_and_csv(api):
    overview = api.get(f"/stats/api/site?{RANGE}").json()
    assert overview["totals"] == {
        "pageviews": 10,
        "visitors": 9,
        "bot_pageviews": 4,
        "ad_clicks": 7,
    }
    assert overview["pages"] == [
        {"value": "/", "events": 9, "uniques": 9},
        {"value": "other", "events": 1, "uniques": 1},
    ]
    assert overview["bots"] == [{"value": "Googlebot", "events": 4, "uniques": 0}]
    daily = _csv(api.get(f"/stats/api/site/daily?{RANGE}&format=csv").text)
    assert [(d["day"], d["pageviews"], d["visitors"], d["bot_pageviews"]) for d in daily] == [
        ("2026-11-01", "7", "6", "0"),
        ("2026-11-02", "3", "3", "4"),
        ("2026-11-03", "0", "0", "0"),
    ]
    referrers = _csv(api.get(f"/stats/api/site/breakdown/referrer?{RANGE}&format=csv").text)
    assert referrers == [
        {"value": "www.google.com", "events": "6", "visitors": "5"},
        {"value": "other", "events": "4", "visitors": "4"},
    ]
    utm = api.get(f"/stats/api/site/breakdown/utm_campaign?{RANGE}").json()["rows"]
    assert utm == [
        {"value": "nov", "events": 6, "visitors": 5},
        {"value": "other", "events": 4, "visitors": 4},
    ]
    bots = _csv(api.get(f"/stats/api/site/breakdown/bot?{RANGE}&format=csv").text)
    assert bots == [{"value": "Googlebot", "events": "4"}]
    totals = _csv(api.get(f"/stats/api/site?{RANGE}&format=csv").text)
    assert totals == [{"pageviews": "10", "visitors": "9", "bot_pageviews": "4", "ad_clicks": "7"}]
    assert (
        api.get(f"/stats/api/site?{RANGE}&site=nowhere.example").json()["totals"]["pageviews"] == 0
    )


def test_consent_json_and_csv(api):
    report = api.get(f"/stats/api/consent?{RANGE}").json()
    assert report["available"] is True
    assert report["decisions"] == 7
    assert report["by_day"][0] == {
        "group": "2026-11-01",
        "category": "analytics",
        "decisions": 5,
        "granted": 3,
        "refused": 2,
        "customized": 2,
        "granted_rate": pytest.approx(0.6),
        "refused_rate": pytest.approx(0.4),
        "customized_rate": pytest.approx(0.4),
    }
    revisions = _csv(api.get(f"/stats/api/consent/by-revision?{RANGE}&format=csv").text)
    assert [(r["group"], r["category"], r["decisions"], r["granted_rate"]) for r in revisions] == [
        ("3", "analytics", "5", "0.6000"),
        ("3", "marketing", "5", "0.6000"),
        ("other", "analytics", "2", "0.5000"),
        ("other", "marketing", "2", "0.5000"),
    ]
    actions = _csv(api.get(f"/stats/api/consent/actions?{RANGE}&format=csv").text)
    assert actions == [
        {"value": "accept_all", "events": "3"},
        {"value": "reject_all", "events": "2"},
        {"value": "save", "events": "2"},
    ]
    by_day = _csv(api.get(f"/stats/api/consent/by-day?{RANGE}&format=csv").text)
    assert len(by_day) == 4


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/stats/api/site?from=2026-13-01", 400, "from"),
        ("/stats/api/site?from=2026-11-05&to=2026-11-01", 400, "from"),
        ("/stats/api/site?format=xml", 400, "format"),
        ("/stats/api/site/breakdown/shoe_size", 400, "dimension"),
        ("/stats/api/campaign-breakdown/colour/x", 400, "dimension"),
        ("/stats/api/campaigns?site=%00", 400, "site"),
        ("/stats/api/campaigns/no-such-campaign", 404, None),
        ("/stats/api/campaign-links/no-such-campaign?format=csv", 404, None),
        ("/stats/api/campaign-timeline/no-such-campaign", 404, None),
    ],
    ids=lambda value: str(value)[:40],
)
def test_bad_api_input_gets_a_clear_error(api, path, status, field):
    response = api.get(path)
    assert response.status_code == status
    body = response.json()
    assert body["error"]
    if field:
        assert body["field"] == field


def test_openapi_document_lists_every_api_route(api, dashboard):
    document = api.get("/stats/api/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/stats"}]
    documented = set(document["paths"])
    served = {
        route.path.replace(":path", "")
        for route in dashboard.routes
        if route.path.startswith("/api")
    }
    assert served == documented
    for path, item in document["paths"].items():
        operation = item["get"]
        assert "401" in operation["responses"], path
        if path != "/api/openapi.json" and path != "/api/sites":
            assert "text/csv" in operation["responses"]["200"]["content"], path
    link_row = document["components"]["schemas"]["LinkRow"]
    assert set(link_row["required"]) == {
        "link",
        "clicks",
        "unique",
        "human",
        "scanner",
        "unique_human",
    }


def _cells(html: str, table: str) -> list[list[str]]:
    body = html.split(f'data-table="{table}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    return [
        [unescape(cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in rows
        if "<td" in row
    ]


def test_dashboard_pages_show_the_numbers(client):
    log_in(client, *VIEWER)
    campaign = client.get(f"/stats/campaigns/{quote(CAMPAIGN)}").text
    cards = re.findall(r'<span class="number">([^<]+)</span>', campaign)
    assert cards == [
        "10",
        "8",
        "7",
        "3",
        "11",
        "8",
        "9",
        "2",
        "9",
        "77,8\u202f%",
        "87,5\u202f%",
        "1",
    ]
    assert _cells(campaign, "summary") == [
        [CAMPAIGN, "2026-11-02 08:00", "9", "10", "8", "7", "3", "11", "8", "9", "2",
         "77,8\u202f%", "87,5\u202f%", "1"]
    ]  # fmt: skip
    assert _cells(campaign, "device") == [["mobile", "13", "5"], ["other", "3", "2"]]
    assert campaign.count('class="point"') == 3 * 65
    links = client.get(f"/stats/campaigns/{quote(CAMPAIGN)}/links").text
    assert _cells(links, "links") == [
        [LINK_A, "9", "8", "8", "1", "7"],
        ["other", "2", "2", "1", "1", "1"],
    ]
    site = client.get(f"/stats/site?{RANGE}").text
    assert re.findall(r'<span class="number">([^<]+)</span>', site) == ["10", "9", "4", "7"]
    assert _cells(site, "referrer") == [["www.google.com", "6", "5"], ["other", "4", "4"]]
    assert _cells(site, "bot") == [["Googlebot", "4"]]
    assert "additionnés" in site  # the note on how uniques over a range are computed
    consent = client.get(f"/stats/consent?{RANGE}").text
    assert _cells(consent, "by_revision")[2] == [
        "other", "analytics", "2", "1", "1", "0", "50,0\u202f%", "50,0\u202f%"
    ]  # fmt: skip
    listing = client.get("/stats/campaigns").text
    assert f'href="/stats/campaigns/{CAMPAIGN}"' in listing


def test_dashboard_speaks_english_on_request(client):
    log_in(client, *VIEWER)
    english = client.get("/stats/site", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english.text
    assert "Unique visitors" in english.text
    campaign = client.get(f"/stats/campaigns/{quote(CAMPAIGN)}", headers={"Accept-Language": "en"})
    assert '<span class="number">77.8%</span>' in campaign.text
    switched = client.get("/stats/lang?to=fr&next=/stats/site", headers={"Accept-Language": "en"})
    assert switched.headers["location"] == "/stats/site"
    french = client.get("/stats/site", headers={"Accept-Language": "en"})
    assert '<html lang="fr">' in french.text


def test_unknown_campaign_page_is_a_404(client):
    log_in(client, *VIEWER)
    response = client.get("/stats/campaigns/no-such-campaign")
    assert response.status_code == 404
    bad_range = client.get("/stats/site?from=nonsense")
    assert bad_range.status_code == 400


def test_sites(api):
    assert api.get("/stats/api/sites").json() == {"sites": ["mypharm.fr"]}


def test_consent_view_without_receipts_table(clickhouse_url, live_server):
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from beacon.auth import AccountStore
    from beacon.dashboard import create_dashboard
    from beacon.migrations import migrate
    from beacon.store import Store

    store = Store(clickhouse_url)
    migrate(store)
    AccountStore(store).add("olga", "olga's password")
    dashboard = create_dashboard(store, secret_keys=["k"], secure_cookies=False)
    server = live_server(Starlette(routes=[Mount("/stats", app=dashboard)]))
    with httpx.Client(base_url=server.url) as client:
        log_in(client, "olga", "olga's password")
        store.command("DROP TABLE consent_receipts SYNC")  # a store that keeps no receipts
        page = client.get("/stats/consent")
        assert page.status_code == 200
        assert "consent_receipts n&#39;existe pas" in page.text
        report = client.get("/stats/api/consent").json()
        assert report["available"] is False
        assert report["by_day"] == []
