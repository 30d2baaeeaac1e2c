"""`kades up`'s command-line parts: the health wait (a progress bar on a terminal only, a clear
end at the deadline) and the summary it prints (addresses without passwords)."""
from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kades.dev.localrun import _wait_healthy, running_summary
from kades.registry import FUNCTIONS
from kades.settings import Settings
from terminal import Terminal


@pytest.fixture
def healthy_url():
    """A process answering 200 on /health."""
    @Request.application
    def app(request):
        return Response("ok", status=200 if request.path == "/health" else 404)

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_health_wait_shows_a_bar_on_a_terminal_only(healthy_url, tmp_path, monkeypatch):
    urls = {"one": healthy_url, "two": healthy_url}
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    _wait_healthy(urls, 10, tmp_path)
    assert "\r" in terminal.getvalue() and "2/2" in terminal.getvalue()
    redirected = io.StringIO()
    monkeypatch.setattr("sys.stderr", redirected)
    _wait_healthy(urls, 10, tmp_path)
    assert redirected.getvalue() == ""


def test_the_health_wait_names_what_never_became_healthy(healthy_url, tmp_path):
    (tmp_path / "dead.log").write_text("boot\nTraceback: it broke\n")
    with pytest.raises(SystemExit) as stop:
        _wait_healthy({"fine": healthy_url, "dead": "http://127.0.0.1:1"}, 0.5, tmp_path)
    assert str(stop.value).startswith("not healthy after 0s: dead\n")  # exit code 1
    assert "Traceback: it broke" in str(stop.value)


def test_the_summary_shows_no_password():
    config = Settings.from_env({
        "KADES_REDIS_URL": "redis://:s3cret@127.0.0.1:6390/0",
        "KADES_DATABASE_URL": "postgresql://kades:s3cret@127.0.0.1:5440/kades",
        "KADES_SINK_URL": "http://kades:s3cret@127.0.0.1:8090/kades/kades"})
    urls = {name: f"http://127.0.0.1:{8101 + n}" for n, name in enumerate([*FUNCTIONS, "api"])}
    text = running_summary(urls, config, api_key="kades_demo_key", logs=Path(".local/logs"))
    assert "s3cret" not in text
    assert "redis://:***@127.0.0.1:6390/0" in text
    assert "postgresql://kades:***@127.0.0.1:5440/kades" in text
    assert "http://kades:***@127.0.0.1:8090/kades/kades" in text
    assert "kades_demo_key" in text  # the demo key is shown on purpose: it is how to log in
