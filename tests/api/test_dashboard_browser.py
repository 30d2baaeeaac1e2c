"""The dashboard in real headless chromium: the page loads, an alert posted to the broker
goes through alert-dispatch and the api's WebSocket into the live feed, the price chart
shows the token's anomaly marker, and a token is tracked and untracked from the page; a token's page says why (the anomalies behind its risk with
their evidence), its charts have time and value axes, and alerts raised before the page
opened are in the feed on load. Screenshots are saved as test artifacts."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from apiserver import ApiServer
from cdp import Browser, ensure_chromium

from kades.dev.services import free_port
from kades.events.catalogue import ALERT, new_event
from kades.events.envelope import to_binary
from kades.keys import TRACKED_THRESHOLDS
from kades.storage import repository

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("KADES_TEST_ARTIFACTS", ROOT / ".local/artifacts"))
MINT = "So11111111111111111111111111111111111111112"
OTHER = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"

pytestmark = pytest.mark.slow


def spawn(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not healthy within 30 s")


@pytest.fixture
def chromium():
    binary = ensure_chromium()
    if binary is None:
        pytest.skip("no /usr/bin/chromium (apt-get install chromium; CI installs it itself)")
    browser = Browser(binary)
    yield browser
    browser.close()


@pytest.fixture
def mesh(kades_settings, redis_conn, db_conn):
    """api, alert-dispatch and the development broker as processes; yields (api, ingress)."""
    dispatch_port, broker_port = free_port(), free_port()
    env = dict(os.environ, KADES_REDIS_URL=kades_settings.redis_url,
               KADES_REDIS_CLUSTER=str(kades_settings.redis_cluster),
               KADES_DATABASE_URL=kades_settings.database_url,
               KADES_PORT_ALERT_DISPATCH=str(dispatch_port))
    api = ApiServer(kades_settings, extra_env={"KADES_PORT_ALERT_DISPATCH": str(dispatch_port)})
    processes = [
        spawn(["-m", "functions_framework", "--target", "handle", "--source",
               str(ROOT / "functions/alert-dispatch/main.py"), "--host", "127.0.0.1",
               "--port", str(dispatch_port)], env),
        spawn(["-m", "kades.cli", "broker", "--eventing-dir", str(ROOT / "eventing"),
               "--port", str(broker_port)], env)]
    try:
        wait_healthy(f"http://127.0.0.1:{dispatch_port}")
        wait_healthy(f"http://127.0.0.1:{broker_port}")
        yield api, f"http://127.0.0.1:{broker_port}/kades/kades"
    finally:
        api.stop()
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def store_token(db_conn) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    repository.insert_token_metrics(db_conn, [
        {"time": now - timedelta(minutes=30 - i), "token": MINT, "source": "test",
         "price": 1.0 + (0.5 if i == 20 else 0.01 * i), "volume": 5.0, "liquidity": 1e5}
        for i in range(30)])
    repository.insert_anomalies(db_conn, [{"time": now - timedelta(minutes=10), "token": MINT,
                                           "anomaly_type": "price_spike", "score": 0.9,
                                           "detector": "t", "event_source": "/t", "event_id": "1"}])
    repository.insert_risk_score(db_conn, {"time": now - timedelta(minutes=10), "token": MINT,
                                           "score": 0.72, "level": "high", "event_source": "/t",
                                           "event_id": "1"})
    db_conn.commit()


def test_dashboard_shows_live_alert_and_anomaly_marker(mesh, chromium, db_conn, make_key,
                                                       redis_conn):
    api, ingress = mesh
    _, key = make_key()
    store_token(db_conn)
    chromium.navigate(api.url + "/")
    chromium.wait_for("document.readyState === 'complete' && !!document.getElementById('feed')")
    chromium.evaluate(f"localStorage.setItem('kades.apiKey', {key!r}); location.reload(); true")
    time.sleep(0.2)
    chromium.wait_for("document.getElementById('status').textContent === 'live'")
    chromium.wait_for(f"!!document.querySelector('tr[data-token=\"{MINT}\"]')")
    markers = chromium.wait_for("Number(document.getElementById('price-chart').dataset.markers || 0)")
    assert markers == 1  # the one stored anomaly, drawn on the price line

    data = {"token": MINT, "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "level": "critical", "score": 0.93, "kind": "escalated", "threshold": 0.7,
            "message": "risk rose to critical", "channels": ["anomalies", "patterns"]}
    headers, body = to_binary(new_event(ALERT, "/tests/browser", data, subject=MINT))
    posted = time.monotonic()
    assert httpx.post(ingress, headers=headers, content=body, timeout=5).status_code == 202
    chromium.wait_for("document.querySelectorAll('#feed li.alert').length >= 1")
    latency_s = time.monotonic() - posted
    print(f"\nalert from broker ingress to the dashboard feed: {latency_s * 1000:.0f} ms "
          "(the issue's goal: within 2 s)")
    text = chromium.evaluate("document.querySelector('#feed li.alert').textContent")
    assert "critical" in text and "risk rose to critical" in text
    chromium.screenshot(ARTIFACTS / "dashboard.png")
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000

    # track a token from the form, then stop tracking it from its row
    row = f"document.querySelector('tr[data-token=\"{OTHER}\"]')"
    chromium.evaluate(f"document.getElementById('track-address').value = {OTHER!r};"
                      " document.getElementById('track-form').requestSubmit(); true")
    chromium.wait_for(f"!!{row} && {row}.textContent.startsWith('★')")
    assert float(redis_conn.hget(TRACKED_THRESHOLDS, OTHER)) == 0.7
    chromium.wait_for(f"(button => button ? (button.click(), true) : false)"
                      f"({row} && {row}.querySelector('button.untrack'))")
    chromium.wait_for(f"!{row}")  # neither tracked nor among the riskiest: gone
    assert redis_conn.hget(TRACKED_THRESHOLDS, OTHER) is None
    # a refused track (here a bad address) is shown, not dropped
    chromium.evaluate("document.getElementById('track-address').value = '0OIl';"
                      " document.getElementById('track-form').requestSubmit(); true")
    chromium.wait_for("document.getElementById('status').textContent.startsWith('not tracked: ')")


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def store_evidence(db_conn, now: datetime) -> dict:
    """A token whose risk names two anomalies: a wash trade 3 h old (outside the page's 1 h
    window) and a price spike 10 min old, each stored with its evidence."""
    wash = {"time": now - timedelta(hours=3), "token": MINT, "anomaly_type": "wash_trading",
            "score": 0.81, "detector": "chain.wash", "event_source": "/t", "event_id": "w",
            "details": {"summary": "2 wallet(s) carried 64% of the volume",
                        "evidence": {"wallets": ["A", "B"], "volume_share": 0.64}}}
    spike = {"time": now - timedelta(minutes=10), "token": MINT, "anomaly_type": "price_spike",
             "score": 0.9, "detector": "temporal.return_spike", "event_source": "/t",
             "event_id": "s", "details": {"detector": "return_spike", "return": 0.4123,
                                          "baseline_sd": 0.0102, "price": 1.5}}
    repository.insert_anomalies(db_conn, [wash, spike])
    explanation = [{"anomaly_type": a["anomaly_type"], "component": component,
                    "score": a["score"], "time": rfc3339(a["time"]), "detector": a["detector"],
                    "contribution": contribution}
                   for a, component, contribution in ((spike, "temporal", 0.66),
                                                      (wash, "chain", 0.58))]
    # newer than store_token's risk score: the token's risk now
    repository.insert_risk_score(db_conn, {"time": now - timedelta(minutes=5), "token": MINT,
                                           "score": 0.86, "level": "high",
                                           "components": {"chain": 0.58, "temporal": 0.66},
                                           "explanation": explanation, "event_source": "/t",
                                           "event_id": "r"})
    db_conn.commit()
    return {"wash": wash, "spike": spike}


def post_alert(ingress: str, **data) -> str:
    event = new_event(ALERT, "/tests/browser", {"token": MINT, "threshold": 0.7,
                                                "channels": ["anomalies"], **data}, subject=MINT)
    headers, body = to_binary(event)
    assert httpx.post(ingress, headers=headers, content=body, timeout=5).status_code == 202
    return event.id


FEED = "[...document.querySelectorAll('#feed li.alert')].map(li => li.textContent)"


def test_dashboard_says_why_and_shows_recent_alerts_on_load(mesh, chromium, db_conn, make_key):
    api, ingress = mesh
    _, key = make_key()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    store_token(db_conn)
    store_evidence(db_conn, now)
    # two alerts raised before the page opens, through the broker and alert-dispatch
    earlier = [post_alert(ingress, time=rfc3339(now - timedelta(hours=2)), level="high",
                          score=0.72, kind="raised", message="risk reached high (before)"),
               post_alert(ingress, time=rfc3339(now - timedelta(minutes=10)), level="critical",
                          score=0.91, kind="escalated", message="risk rose to critical (before)")]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        stored = httpx.get(api.url + "/v1/alerts", headers={"X-API-Key": key}).json()["alerts"]
        if len(stored) == 2:
            break
        time.sleep(0.1)
    assert [a["alert_id"] for a in stored] == earlier[::-1]

    chromium.navigate(api.url + "/")
    chromium.wait_for("document.readyState === 'complete' && !!document.getElementById('feed')")
    chromium.evaluate(f"localStorage.setItem('kades.apiKey', {key!r}); location.reload(); true")
    time.sleep(0.2)
    chromium.wait_for("document.getElementById('feed').dataset.loaded === 'true'")
    feed = chromium.evaluate(FEED)
    assert len(feed) == 2, feed  # shown on load, newest first, before any live alert
    assert "critical (before)" in feed[0] and "high (before)" in feed[1]

    # why: the explanation's anomalies with their evidence, the old wash trade included
    chromium.wait_for("document.querySelectorAll('#explanation tr.anomaly').length === 2")
    rows = chromium.evaluate("[...document.querySelectorAll('#explanation tr.anomaly')]"
                             ".map(tr => [...tr.children].map(td => td.textContent))")
    assert rows[0][1:5] == ["price_spike", "temporal.return_spike", "0.90", "0.66"]
    assert "return 0.4123" in rows[0][5] and "baseline_sd 0.0102" in rows[0][5]
    assert rows[1][1:5] == ["wash_trading", "chain.wash", "0.81", "0.58"]
    assert rows[1][5].startswith("2 wallet(s) carried 64% of the volume")
    assert "volume_share 0.64" in rows[1][5] and "wallets ×2" in rows[1][5]
    assert "risk 0.86 (high)" in chromium.evaluate("document.getElementById('why').textContent")
    window = chromium.evaluate("[...document.querySelectorAll('#anomalies tr.anomaly')]"
                               ".map(tr => tr.children[1].textContent)")
    assert window == ["price_spike", "price_spike"]  # store_token's and ours; not the wash trade

    # both charts have labelled time and value axes
    for chart, title in (("price-chart", "price"), ("risk-chart", "risk score")):
        axes = chromium.evaluate(f"(({{xTicks, yTicks, axes}}) => ({{xTicks, yTicks, axes}}))"
                                 f"(document.getElementById('{chart}').dataset)")
        assert axes["axes"] == f"{title}|time (UTC)"
        x_ticks, y_ticks = axes["xTicks"].split("|"), axes["yTicks"].split("|")
        assert len(x_ticks) >= 3 and all(len(t) == 5 and t[2] == ":" for t in x_ticks), x_ticks
        assert len(y_ticks) >= 3 and all(float(v) == float(v) for v in y_ticks), y_ticks
    risk_ticks = chromium.evaluate("document.getElementById('risk-chart').dataset.yTicks")
    assert risk_ticks.split("|")[0] == "0" and risk_ticks.split("|")[-1] == "1"

    # a live alert goes on top; the ones loaded are not repeated
    chromium.wait_for("document.getElementById('status').textContent === 'live'")
    post_alert(ingress, time=rfc3339(datetime.now(timezone.utc)), level="critical", score=0.95,
               kind="escalated", message="risk rose to critical (live)")
    chromium.wait_for("document.querySelectorAll('#feed li.alert').length === 3")
    time.sleep(0.5)
    feed = chromium.evaluate(FEED)
    assert len(feed) == 3 and "(live)" in feed[0]
    chromium.screenshot(ARTIFACTS / "dashboard-why.png")
    assert (ARTIFACTS / "dashboard-why.png").stat().st_size > 10_000


def test_connecting_again_leaves_one_socket_and_a_late_answer_is_not_shown(mesh, chromium,
                                                                          db_conn, make_key):
    """Each Connect (the same key again, or a typo first) added a socket, its old one
    reconnecting on close, and a poll of its own, to the key's 10 connections; and a slow
    answer for the token clicked before was drawn under the next token's name."""
    api, _ = mesh
    _, key = make_key()
    store_token(db_conn)  # MINT has a risk score; OTHER none
    chromium.send("Page.addScriptToEvaluateOnNewDocument", source="""
      window.__opened = []; const Real = window.WebSocket;
      window.WebSocket = function (url, protocols) {
        const ws = new Real(url, protocols); window.__opened.push(ws); return ws; };
      window.WebSocket.OPEN = Real.OPEN; window.WebSocket.prototype = Real.prototype;""")
    chromium.navigate(api.url + "/")
    chromium.wait_for("document.readyState === 'complete' && !!document.getElementById('feed')")
    submit = "document.getElementById('key-form').requestSubmit(); true"
    chromium.evaluate("document.getElementById('api-key').value = 'kades_typo'; " + submit)
    time.sleep(1.0)
    chromium.evaluate(f"document.getElementById('api-key').value = {key!r}; " + submit)
    chromium.wait_for("document.getElementById('status').textContent === 'live'")
    for _ in range(3):  # Connect pressed again
        chromium.evaluate(submit)
        time.sleep(1.0)
    chromium.wait_for("document.getElementById('status').textContent === 'live'")
    time.sleep(2.0)  # what a left-over reconnect would have opened by now
    opened = chromium.evaluate("window.__opened.filter(ws => ws.readyState <= 1).length")
    assert opened == 1, chromium.evaluate("window.__opened.map(ws => ws.readyState)")

    # two clicks, the first one's answer the slower: the second token's stays shown
    chromium.evaluate(f"""(() => {{
      const real = window.fetch;
      window.fetch = (path, options) => String(path).includes('/v1/token/{MINT}')
        ? new Promise(resolve => setTimeout(() => resolve(real(path, options)), 1500))
        : real(path, options);
      selectToken('{MINT}');
      selectToken('{OTHER}');
      return true; }})()""")
    time.sleep(2.5)
    assert chromium.evaluate("document.getElementById('chart-title').textContent") == OTHER
    assert "no risk score yet" in chromium.evaluate("document.getElementById('why').textContent")
