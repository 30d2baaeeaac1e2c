"""What `make run` shows: the demo story fed to the broker, its detections read back
through the API, each injected anomaly printed beside the first detection of it."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from kades.clients import http_client
from kades.events.envelope import CloudEvent, to_binary
from kades.runtime import tokenfile
from kades.simulate.story import demo_story, detection_of


def post_events(ingress: str, events: list[CloudEvent], *, rate_per_s: float,
                token_file: str = "") -> None:
    """POST each event in binary mode, paced; a refused event is an error. `token_file`: the
    source's token for the Broker (sender identity on)."""
    for event in events:
        headers, body = to_binary(event)
        headers.update(tokenfile.authorization(token_file))
        http_client().post(ingress, headers=headers, content=body, timeout=10.0).raise_for_status()
        time.sleep(1.0 / rate_per_s)


def fetch_anomalies(api_url: str, api_key: str | None = None) -> list[dict]:
    """Every stored anomaly, following the API's pages."""
    rows, params = [], {"limit": 1000}
    headers = {"X-API-Key": api_key} if api_key else {}
    while True:
        response = http_client().get(f"{api_url}/v1/anomalies", params=params,
                                     headers=headers, timeout=5)
        response.raise_for_status()  # an error's body is a problem, not a page of anomalies
        page = response.json()
        rows += page["anomalies"]
        if not page["next_cursor"]:
            return rows
        params["cursor"] = page["next_cursor"]


def match_labels(labels: list[dict], anomalies: list[dict]) -> list[dict | None]:
    """For each label (`kind` or `kinds`), its earliest detection (None when missed)."""
    return [detection_of({**label, "kinds": label.get("kinds") or [label["kind"]]}, anomalies)
            for label in labels]


def show_demo(api_url: str, ingress: str, *, seed: int, minutes: int, rate: float,
              api_key: str | None = None, token_file: str = "") -> int:
    started = time.monotonic()
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=minutes)
    story = demo_story(seed=seed, minutes=minutes, start=start)
    tokens = {label["token"] for label in story.labels}
    if earlier := [a for a in fetch_anomalies(api_url, api_key) if a["token"] in tokens]:
        # its tokens' states are past the story's times: every event would come late
        # (counted and dropped, as it must be) and the table would show the old detections
        print(f"\nseed {seed} was fed to this system before ({len(earlier)} anomalies of its tokens "
              f"are stored), so its events would all come too late to be analysed again. Replay "
              f"it on empty data: `.venv/bin/kades up --fresh --seed {seed}`.")
        return 1
    print(f"\nfeeding the demo story (seed {seed}: market, social and chain streams over the last "
          f"{minutes} minutes, {len(story.events)} events) to {ingress} ...")
    post_events(ingress, story.events, rate_per_s=rate, token_file=token_file)
    required = [label for label in story.labels if label["required"]]
    repeats = [label for label in story.labels if label.get("repeats")]
    also = f" (and {len(repeats)} repeating a kind within minutes, not counted)" if repeats else ""
    print(f"fed in {time.monotonic() - started:.1f}s; {len(required)} anomalies were injected{also}. "
          "Waiting for them to come out of the API...")
    deadline = time.monotonic() + 60
    while True:
        anomalies = [a for a in fetch_anomalies(api_url, api_key) if a["token"] in tokens]
        found = match_labels(required, anomalies)
        if all(found) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    print(f"\n{'injected':<80}detected (GET {api_url}/v1/anomalies)")
    rows = sorted(zip(required + repeats, found + match_labels(repeats, anomalies)),
                  key=lambda row: row[0]["start"])
    for label, hit in rows:
        what = f"{label['start'][11:19]}  {label['source']:<6} {label['token'][:10]}…  {'/'.join(label['kinds'])}"
        seen = (f"{hit['time'][11:19]}  {hit['anomaly_type']:<22} score {hit['score']:.2f}"
                if hit else "not detected")
        if not label["required"]:  # shown, not counted: the policy's one alert (story.REPEAT_S)
            seen = (f"{seen} (not counted: a repeat)" if hit else
                    f"not counted: the same kind as at {label['repeats'][11:19]}")
        print(f"  {what[:76]:<76}  {seen}")
    detected = sum(1 for hit in found if hit)
    print(f"\n{detected}/{len(required)} injected anomalies detected, {len(anomalies)} anomalies "
          f"stored in all; {time.monotonic() - started:.1f}s from the first event.")
    print(f"Replay this demo with `.venv/bin/kades up --fresh --seed {seed}` (on empty data). "
          "Everything keeps running; `make stop` stops it.")
    return 0 if detected else 1
