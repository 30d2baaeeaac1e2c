"""The dashboard in real headless chromium: the page loads, an alert posted to the broker
goes through alert-dispatch and the api's WebSocket into the live feed, and the price chart
shows the token's anomaly marker. A screenshot is saved as a test artifact."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from apiserver import ApiServer, free_port
from cdp import Browser, ensure_chromium

from kades.events.catalogue import ALERT, new_event
from kades.events.envelope import to_binary
from kades.storage import repository

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("KADES_TEST_ARTIFACTS", ROOT / ".local/artifacts"))
MINT = "So11111111111111111111111111111111111111112"

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


def test_dashboard_shows_live_alert_and_anomaly_marker(mesh, chromium, db_conn, make_key):
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
