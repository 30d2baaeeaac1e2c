"""`kades down`, `kades services down` and `kades up` stop only what this checkout started:
a pid file that is garbled, or whose pid is now another process (another checkout's Redis,
another user's process), is removed with a note and nothing is signalled; a server that will
not stop is one line, not a traceback; and a subdirectory of the repository is no checkout of
its own."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kades import cli
from kades.dev import services as devservices
from kades.dev.localrun import main_down, main_up, stop_system
from kades.settings import Settings

NOBODY = 65534


def sleeper(*, stdout: Path | None = None, cwd: Path | None = None,
            argv0: str = "sleep") -> subprocess.Popen:
    """A process in a session of its own, as `kades up` starts them: with `stdout` its log."""
    out = open(stdout, "ab") if stdout else subprocess.DEVNULL
    try:
        return subprocess.Popen([argv0, "60"], executable=shutil.which("sleep"), stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    finally:
        if stdout:
            out.close()


def started_here(state: Path, name: str) -> subprocess.Popen:
    """A process as `start_system` starts one: its log as stdout, its pid file beside."""
    for folder in ("run", "logs"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    process = sleeper(stdout=state / "logs" / f"{name}.log")
    (state / "run" / f"{name}.pid").write_text(str(process.pid))
    return process


@pytest.fixture
def others():
    """Processes that are not this checkout's: killed at the end, whatever the test did."""
    processes = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def test_a_pid_file_naming_a_process_not_started_here_is_removed_and_it_left_running(
        tmp_path, others, capsys):
    ours = started_here(tmp_path, "temporal-analysis")
    others.append(sleeper())  # a pid taken again since, another checkout's ...
    (tmp_path / "run" / "broker.pid").write_text(str(others[0].pid))
    assert stop_system(tmp_path) == ["temporal-analysis"]
    assert ours.wait(timeout=5) is not None
    assert others[0].poll() is None  # left running
    assert list((tmp_path / "run").iterdir()) == []
    note = capsys.readouterr().err
    assert note.count("\n") == 1 and "broker.pid" in note and f"pid {others[0].pid}" in note


def test_a_redis_pid_file_naming_another_checkouts_redis_leaves_it_running(
        tmp_path, others, capsys):
    """A stale redis.pid whose pid is now a redis-server of another checkout: it is some
    redis-server, but not the one started in this folder (it works in its own)."""
    ours, theirs = tmp_path / "ours" / ".local", tmp_path / "theirs" / ".local"
    for data_dir in (ours, theirs):
        devservices.redis_dir(data_dir).mkdir(parents=True)
    others.append(sleeper(argv0="redis-server", cwd=devservices.redis_dir(theirs)))
    pid_file = devservices.redis_dir(ours) / "redis.pid"
    pid_file.write_text(f"{others[0].pid}\n")
    assert devservices.stop_all(ours) == []
    assert others[0].poll() is None and not pid_file.exists()
    assert f"pid {others[0].pid} is no Redis started in" in capsys.readouterr().err
    # the same process in its own folder is that folder's Redis, and stopped
    (devservices.redis_dir(theirs) / "redis.pid").write_text(str(others[0].pid))
    assert devservices.stop_all(theirs) == ["redis"]
    assert others[0].wait(timeout=5) is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to make a process of another user")
def test_as_another_user_a_stale_pid_file_is_a_note_not_a_permission_error(others):
    """Not root, the pid of another user's process cannot be signalled: the stop said so in a
    PermissionError traceback, for a process that was not ours anyway."""
    state = Path(tempfile.mkdtemp(prefix="kades-stop-"))
    try:
        for folder in (state, state / "run", devservices.redis_dir(state)):
            folder.mkdir(exist_ok=True)
            folder.chmod(0o777)
        others.extend([sleeper(), sleeper(argv0="redis-server", cwd=state)])
        (state / "run" / "broker.pid").write_text(str(others[0].pid))
        (devservices.redis_dir(state) / "redis.pid").write_text(str(others[1].pid))
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the stop as user nobody, this interpreter's modules already loaded
            code, sys.stderr = 1, os.fdopen(write, "w")
            try:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                stop_system(state)
                devservices.stop_all(state)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        os.close(write)
        with os.fdopen(read) as errors:
            said = errors.read()
        assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0, said
        assert all(process.poll() is None for process in others)
        assert said.count("removed the stale pid file") == 2, said
        assert not list(state.glob("**/*.pid"))
    finally:
        shutil.rmtree(state)


@pytest.mark.parametrize("content", ["", "\n", "not a pid", "12 34", "-7"])
def test_an_empty_or_garbled_pid_file_is_stale(tmp_path, content, capsys):
    local = tmp_path / ".local"
    pid_files = [local / "run" / "broker.pid", devservices.redis_dir(local) / "redis.pid",
                 devservices.redis_group_dir(local, "cluster") / "7001" / "redis.pid"]
    for pid_file in pid_files:
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(content)
    assert main_down(["--root", str(tmp_path)]) == 0
    assert not any(pid_file.exists() for pid_file in pid_files)
    assert capsys.readouterr().err.count("holds no pid") == 3
    for pid_file in pid_files[1:]:  # `kades services down` alone
        pid_file.write_text(content)
    assert devservices.main_services(["down", "--data-dir", str(local)]) == 0
    assert not any(pid_file.exists() for pid_file in pid_files)


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def not_redis_port():
    """An HTTP server (`python3 -m http.server`): it answers a Redis PING with HTML."""
    server = ThreadingHTTPServer(("127.0.0.1", devservices.free_port()), QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_a_server_that_is_not_redis_on_the_redis_port_is_named_not_a_traceback(
        not_redis_port, tmp_path, capsys):
    config = Settings(redis_url=f"redis://127.0.0.1:{not_redis_port}/0",
                      database_url="postgresql://kades@db.example:5432/kades")
    assert devservices.main_services(["status"], config=config) == 1
    assert (f"redis://127.0.0.1:{not_redis_port}/0  something that is not Redis listens on "
            f"port {not_redis_port}") in capsys.readouterr().out
    assert devservices.main_services(["up", "--data-dir", str(tmp_path)], config=config) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"kades services: something that is not Redis listens on "
                            f"127.0.0.1:{not_redis_port}")
    assert error.count("\n") == 1
    assert not (tmp_path / "redis").exists()


def test_a_redis_that_asks_for_a_password_is_redis_but_not_ours(tmp_path, capsys):
    """Its NOAUTH answer was taken for no Redis at all."""
    port = devservices.free_port()
    server = subprocess.Popen([devservices.redis_binary(), "--port", str(port), "--bind",
                               "127.0.0.1", "--requirepass", "secret", "--save", "",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        devservices.wait_until(lambda: devservices.port_open(port), timeout_s=10,
                               what="redis-server", log=tmp_path / "redis.log")
        assert devservices.redis_status(port) == "locked"
        config = Settings(redis_url=f"redis://127.0.0.1:{port}/0",
                          database_url="postgresql://kades@db.example:5432/kades")
        assert devservices.main_services(["status"], config=config) == 0
        assert "answering, but not to us" in capsys.readouterr().out
        assert devservices.main_services(["up", "--data-dir", str(tmp_path / "d")],
                                         config=config) == 1
        assert "belongs to another server" in capsys.readouterr().err
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("message", ["redis-server (pid 4242) did not stop within 10 s",
                                     "pg_ctl stop failed: pg_ctl: server does not shut down\n"
                                     "HINT: the \"-m fast\" option ..."])
def test_a_server_that_will_not_stop_is_one_line_and_exit_code_1(tmp_path, monkeypatch,
                                                                 capsys, message):
    def stop_all(data_dir):
        raise devservices.DevServiceError(message)

    monkeypatch.setattr(devservices, "stop_all", stop_all)
    assert cli.main(["down", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"kades down: {message.splitlines()[0]}\n"
    # `kades up --fresh` stops the servers before it wipes their data
    assert cli.main(["up", "--root", str(tmp_path), "--fresh", "--no-demo"]) == 1
    assert capsys.readouterr().err == f"kades up: {message.splitlines()[0]}\n"


def test_kades_down_in_a_subdirectory_stops_the_repository_it_is_in(tmp_path, monkeypatch,
                                                                     capsys):
    repo = tmp_path / "repo"
    (repo / "shared").mkdir(parents=True)
    (repo / "shared" / "pyproject.toml").write_text("")
    below = repo / "functions" / "api"
    below.mkdir(parents=True)
    broker = started_here(repo / ".local", "broker")
    monkeypatch.chdir(below)
    assert main_down([]) == 0
    assert capsys.readouterr().out == "stopped: broker\n"
    assert broker.wait(timeout=5) is not None
    assert not (below / ".local").exists()
