"""Time travel (issue 16): the mock's clock belongs to the test, over real HTTP in both dialects.

``mockcre serve --clock T`` starts it frozen; ``/__admin/clock`` reads and moves it; expiry,
defaults, rankings, the quality report and ``--state`` all follow it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from httpkit import TIMEOUT, Client, cre_item, dm_recommend, start, stop_soon
from mockcre.model.clock import Clock, parse_duration, parse_moment
from mockcre.common.resources import load_schema
from servekit import ServeProcess

Y2017 = 1_483_228_800  # 2017-01-01T00:00:00Z
DOC_ACTION = load_schema("cre.action")["examples"][0]  # seed 000's action example, oper_time 1483200000


def _clock(client: Client, **move) -> dict:
    if not move:
        return requests.get(f"{client.url}/__admin/clock", timeout=TIMEOUT).json()
    resp = requests.post(f"{client.url}/__admin/clock", json=move, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def mock():
    server = start()
    yield Client(server.url)
    stop_soon(server)


@pytest.fixture(scope="module")
def served_2017(tmp_path_factory):
    with ServeProcess(tmp_path_factory.mktemp("clock"), "--clock", "2017-01-01T00:00:00Z") as server:
        yield server, Client(server.url)


def test_serve_clock_flag_freezes_time_and_expiry_follows_it(served_2017):
    server, client = served_2017
    assert _clock(client) == {"now": Y2017, "iso": "2017-01-01T00:00:00Z", "frozen": True}
    client.cre_items(cre_item("old-news"))  # no item_time, no expire_time
    assert "old-news" in client.cre_ids()  # item_time defaults to the mock's now, expiry to + 1 year
    assert _clock(client, advance="366d")["now"] == Y2017 + 366 * 86_400
    assert "old-news" not in client.cre_ids()
    assert _clock(client, freeze="2017-01-02")["iso"] == "2017-01-02T00:00:00Z"
    assert "old-news" in client.cre_ids()  # back in time: the ranking cache lets it come back


def test_a_dm_item_is_gone_after_31_days(mock):
    _clock(mock, freeze=Y2017)
    mock.dm_item("a")  # no item_time: the mock's now; expiry: + 1 month
    assert mock.dm_ids() == ["a"]
    _clock(mock, advance="31d")
    assert mock.call("/dm/service", dm_recommend())["code"] == -3


def test_the_documents_action_example_replayed_at_its_own_time_draws_no_lateness(mock):
    _clock(mock, freeze=int(DOC_ACTION["data"][0]["oper_time"]) + 60)
    assert mock.call("/upload", DOC_ACTION)["code"] == "0"
    report = requests.get(f"{mock.url}/__admin/report", timeout=TIMEOUT).json()
    rules = {f["rule"] for f in report["findings"]}
    assert not rules & {"action-late", "action-future"}, rules
    _clock(mock, resume=True)  # the same report sent at (the test's) wall time is years late
    assert mock.call("/upload", DOC_ACTION)["code"] == "0"
    report = requests.get(f"{mock.url}/__admin/report", timeout=TIMEOUT).json()
    assert "action-late" in {f["rule"] for f in report["findings"]}


def test_running_clock_advances_by_an_offset_and_resumes(mock):
    before = _clock(mock)
    assert before["frozen"] is False
    moved = _clock(mock, advance="12h")
    assert moved["frozen"] is False and moved["now"] - before["now"] >= 12 * 3600
    assert abs(_clock(mock, resume=True)["now"] - before["now"]) < 60


@pytest.mark.parametrize("body, named", [
    ({"freeze": "yesterday"}, "freeze"),
    ({"advance": "ten days"}, "advance"),
    ({"resume": "please"}, "resume"),
    ({"rewind": 3}, "freeze"),
    ({"freeze": 1, "advance": 2}, "advance"),
    ([], "freeze"),
])
def test_a_bad_clock_move_is_a_400_naming_the_field(mock, body, named):
    resp = requests.post(f"{mock.url}/__admin/clock", json=body, timeout=TIMEOUT)
    assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("application/json")
    assert named in resp.json()["message"]
    assert _clock(mock)["frozen"] is False


def test_reset_puts_the_clock_back_to_the_scenarios_clock(mock):
    scenario = "name: in-2017\nclock: 2017-01-01T00:00:00Z\n"
    assert requests.post(f"{mock.url}/__admin/scenarios", data=scenario, timeout=TIMEOUT).status_code == 201
    assert _clock(mock)["now"] == Y2017
    _clock(mock, advance="30d")
    requests.post(f"{mock.url}/__admin/reset", timeout=TIMEOUT).raise_for_status()
    assert _clock(mock) == {"now": Y2017, "iso": "2017-01-01T00:00:00Z", "frozen": True}
    requests.post(f"{mock.url}/__admin/reset?scenarios=1", timeout=TIMEOUT).raise_for_status()
    assert _clock(mock)["frozen"] is False  # no scenario says when: wall time


def test_the_cli_clock_wins_over_the_scenarios(tmp_path):
    scenario = tmp_path / "later.yaml"
    scenario.write_text("name: later\nclock: 2020-06-01T00:00:00Z\n", encoding="utf-8")
    with ServeProcess(tmp_path, "--clock", str(Y2017), "--scenario", str(scenario)) as server:
        assert _clock(Client(server.url))["now"] == Y2017


def test_a_bad_clock_flag_or_scenario_clock_is_refused(tmp_path):
    from servekit import run_cli

    done = run_cli("serve", "--clock", "someday", "--port", "1")
    assert done.returncode == 2 and "--clock" in done.stderr and "ISO 8601" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nclock: someday\n", encoding="utf-8")
    lint = run_cli("scenario", "lint", str(bad))
    assert lint.returncode == 1 and "bad.yaml:2:" in lint.stdout and "clock" in lint.stdout


def test_with_state_a_frozen_clock_survives_a_restart(tmp_path):
    state = tmp_path / "state.db"
    with ServeProcess(tmp_path, "--state", str(state)) as server:
        _clock(Client(server.url), freeze="2017-03-01T00:00:00Z")
        _clock(Client(server.url), advance="1d")
    with ServeProcess(tmp_path, "--state", str(state)) as server:
        assert _clock(Client(server.url)) == {"now": Y2017 + 60 * 86_400, "iso": "2017-03-02T00:00:00Z", "frozen": True}


def test_clock_object_reads_every_form_of_a_moment_and_a_duration():
    assert parse_moment("2017-01-01T00:00:00Z") == parse_moment("2017-01-01") == parse_moment(str(Y2017)) == Y2017
    assert parse_moment(datetime(2017, 1, 1, tzinfo=timezone.utc)) == Y2017
    assert parse_moment("2017-01-01T08:00:00+08:00") == Y2017
    assert [parse_duration(d) for d in ("90s", "15m", "12h", "30d", 5, timedelta(hours=1))] == [90, 900, 43_200,
                                                                                               2_592_000, 5, 3600]
    clock = Clock(source=lambda: 1000.0)
    assert clock.advance(10).now == 1010 and not clock.frozen
    assert clock.freeze().advance("1m").now == 1070 and clock.frozen
    assert clock.resume().now == 1000
    for bad in ("someday", True, None):
        with pytest.raises(ValueError):
            parse_moment(bad)


def test_the_dashboard_shows_the_mocks_time_only_when_it_is_not_wall_time(mock):
    page = requests.get(f"{mock.url}/__admin/", timeout=TIMEOUT).text
    assert 'id="mock-clock"' not in page
    _clock(mock, freeze="2017-01-01T00:00:00Z")
    page = requests.get(f"{mock.url}/__admin/", timeout=TIMEOUT).text
    assert "mock time 2017-01-01T00:00:00Z (frozen)" in page


def test_the_dashboards_journal_shows_utc_dates_as_the_request_page_does(mock):
    _clock(mock, freeze="2017-01-01T08:00:00Z")
    mock.dm_item("a")
    journal = requests.get(f"{mock.url}/__admin/", timeout=TIMEOUT).text
    request_page = requests.get(f"{mock.url}/__admin/requests/1", timeout=TIMEOUT).text
    assert "<td>2017-01-01 08:00:00 UTC</td>" in journal and "1483257600" not in journal
    assert "Received 2017-01-01 08:00:00 UTC" in request_page


def test_the_test_handle_moves_the_clock_and_each_test_starts_on_wall_time():
    from mockcre.testing import MockcreServer

    with MockcreServer() as mock:
        mock.clock.freeze(datetime(2017, 1, 1, tzinfo=timezone.utc))
        client = Client(mock.url)
        client.cre_items(cre_item("a"))
        assert client.cre_ids() == ["a"]
        mock.clock.advance(timedelta(days=366))
        assert client.cre_ids() == [] and mock.clock.now == Y2017 + 366 * 86_400
        mock.begin_test()  # what the fixture does before every test
        assert not mock.clock.frozen and abs(mock.clock.now - datetime.now(timezone.utc).timestamp()) < 60
        mock.begin_test(scenario="name: dated\nclock: 2017-01-01T00:00:00Z\n")
        assert mock.clock.now == Y2017 and mock.clock.frozen


def test_the_fixture_carries_the_clock(mockcre):
    mockcre.clock.freeze("2017-01-01T00:00:00Z")
    assert requests.get(f"{mockcre.url}/__admin/clock", timeout=TIMEOUT).json()["now"] == Y2017
