"""The TimescaleDB pods' init script (knative/base/timescaledb/join.sh), run against real
PostgreSQL servers on this machine: a pod clones the primary, a standby follows a promoted
one, the old primary coming back is made a standby of it (its data moved aside, never
thrown away), a promoted pod that finds a stale primary refuses to start, and a multi-host
database-url finds the primary after a failover."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from kades.dev import services

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "knative" / "base" / "timescaledb" / "join.sh"
TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "pg_controldata", "psql")

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path):
    try:
        bindir = services._postgres_bindir()
    except services.DevServiceUnavailable as error:
        pytest.skip(str(error))
    if not all((bindir / tool).is_file() for tool in TOOLS):
        pytest.skip(f"no {', '.join(TOOLS)} in {bindir}")
    group = Group(tmp_path, bindir)
    yield group
    group.stop_all()


class Group:
    """Pods 0..2 as data directories and ports on this machine, run by an unprivileged
    account when we are root (PostgreSQL refuses root)."""

    def __init__(self, folder: Path, bindir: Path):
        self.folder, self.bindir = folder, bindir
        services._make_traversable(folder)
        folder.chmod(0o777)
        self.account = services._service_account(folder)
        self.started: set[int] = set()
        self.ports = [services.free_port() for _ in range(3)]
        self.peers = " ".join(self.address(pod) for pod in range(3))

    def address(self, pod: int) -> str:
        return f"127.0.0.1:{self.ports[pod]}"

    def data(self, pod: int) -> Path:
        return self.folder / f"pod{pod}" / "pgdata"

    def volume(self, pod: int) -> Path:
        """The pod's volume: PGDATA's parent, the account's (as the pod's fsGroup makes it)."""
        folder = self.data(pod).parent
        if not folder.exists():
            folder.mkdir()
            if self.account:
                shutil.chown(folder, user=self.account)
        return folder

    def run(self, command: list[str], **env) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.account, "--"] if self.account else []
        environment = {"PATH": f"{self.bindir}:{os.environ['PATH']}", "PGHOST": str(self.folder),
                       **env}
        return subprocess.run(prefix + ["env", *(f"{k}={v}" for k, v in environment.items()),
                                        *command], capture_output=True, text=True, timeout=120,
                              cwd=self.folder)

    def initdb(self, pod: int) -> None:
        self.volume(pod)
        done = self.run(["initdb", "-D", str(self.data(pod)), "-U", "postgres",
                         "--auth=trust"])
        assert done.returncode == 0, done.stderr

    def start(self, pod: int) -> None:
        options = f"-p {self.ports[pod]} -k {self.folder} -c listen_addresses=127.0.0.1"
        done = self.run(["pg_ctl", "-D", str(self.data(pod)), "-w", "-o", options,
                         "-l", str(self.folder / f"pod{pod}.log"), "start"])
        assert done.returncode == 0, done.stderr + (self.folder / f"pod{pod}.log").read_text()
        self.started.add(pod)

    def stop(self, pod: int) -> None:
        self.run(["pg_ctl", "-D", str(self.data(pod)), "-m", "fast", "-w", "stop"])
        self.started.discard(pod)

    def stop_all(self) -> None:
        for pod in list(self.started):
            self.stop(pod)

    def join(self, pod: int) -> subprocess.CompletedProcess:
        self.volume(pod)
        return self.run(["sh", str(SCRIPT)], PGDATA=str(self.data(pod)), PGPASSWORD="unused",
                        TIMESCALEDB_PEERS=self.peers, TIMESCALEDB_SELF=self.address(pod))

    def sql(self, pod: int, query: str):
        with psycopg.connect(host="127.0.0.1", port=self.ports[pod], user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            cursor = conn.execute(query)
            return cursor.fetchall() if cursor.description else None


def wait_for(check, timeout_s: float = 20.0) -> None:
    """Until `check()` (a standby replays what its primary wrote a moment ago)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except psycopg.Error:  # a table not replayed yet
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_failover_and_the_old_primary_coming_back(cluster):
    cluster.initdb(0)
    cluster.start(0)
    cluster.sql(0, "CREATE TABLE marks (n int)")
    cluster.sql(0, "INSERT INTO marks VALUES (1)")
    for pod in (1, 2):  # new pods clone the primary and stream from it
        joined = cluster.join(pod)
        assert joined.returncode == 0, joined.stderr
        assert f"cloning the primary {cluster.address(0)}" in joined.stdout
        cluster.start(pod)
        assert cluster.sql(pod, "SELECT pg_is_in_recovery()") == [(True,)]
        wait_for(lambda: cluster.sql(pod, "SELECT n FROM marks") == [(1,)])

    cluster.stop(0)  # the primary is lost; the operator promotes pod 1
    assert cluster.sql(1, "SELECT pg_promote()") == [(True,)]
    cluster.sql(1, "INSERT INTO marks VALUES (2)")

    # a client whose database-url names every pod finds the new primary
    url = (f"postgresql://postgres@{cluster.peers.replace(' ', ',')}/postgres"
           "?target_session_attrs=read-write&connect_timeout=3")
    with psycopg.connect(url) as conn:
        assert conn.execute("SHOW port").fetchone() == (str(cluster.ports[1]),)

    cluster.stop(2)  # the other standby restarts: it follows the promoted pod
    joined = cluster.join(2)
    assert f"a standby: following the primary {cluster.address(1)}" in joined.stdout, \
        joined.stderr
    cluster.start(2)
    wait_for(lambda: cluster.sql(2, "SELECT n FROM marks ORDER BY n") == [(1,), (2,)])

    joined = cluster.join(0)  # the old primary comes back: a standby, its data kept aside
    assert joined.returncode == 0, joined.stderr
    assert "is the primary now: moved to" in joined.stdout
    [aside] = cluster.data(0).parent.glob("pgdata.demoted-*")
    assert (aside / "PG_VERSION").is_file()
    cluster.start(0)
    assert cluster.sql(0, "SELECT pg_is_in_recovery()") == [(True,)]
    wait_for(lambda: cluster.sql(0, "SELECT n FROM marks ORDER BY n") == [(1,), (2,)])


def test_a_promoted_pod_finding_a_stale_primary_refuses_to_start(cluster):
    """After a failover, a whole restart starts pod 0 first (OrderedReady): the old primary,
    with no other pod up to follow, starts as it was. The promoted pod then finds it and must
    neither follow it nor throw its own newer data away."""
    cluster.initdb(0)
    cluster.start(0)
    assert cluster.join(1).returncode == 0
    cluster.start(1)
    cluster.stop(0)
    cluster.sql(1, "SELECT pg_promote()")
    wait_for(lambda: cluster.sql(1, "SELECT pg_is_in_recovery()") == [(False,)])
    cluster.sql(1, "CREATE TABLE after_failover (n int)")
    cluster.stop(1)
    joined = cluster.join(0)  # no other pod answers: pod 0 starts as it was
    assert joined.returncode == 0 and "starting as this pod's data is" in joined.stdout
    cluster.start(0)
    before = sorted(p.name for p in cluster.data(1).iterdir())
    joined = cluster.join(1)
    assert joined.returncode == 1
    assert (f"two primaries: this pod's timeline 2 is not older than {cluster.address(0)}'s 1"
            in joined.stderr)
    assert sorted(p.name for p in cluster.data(1).iterdir()) == before
    assert not list(cluster.data(1).parent.glob("pgdata.demoted-*"))
    # the operator keeps the newer: pod 0 is told to follow, and restarted
    follow_only = cluster.data(0).parent / "follow-only"
    follow_only.touch()  # by the operator, as the pod's user
    if cluster.account:
        shutil.chown(follow_only, user=cluster.account)
    cluster.stop(0)
    joined = cluster.join(0)
    assert joined.returncode == 1 and "may not start as one" in joined.stderr
    assert cluster.join(1).returncode == 0  # no primary answers: it starts as it was
    cluster.start(1)
    joined = cluster.join(0)
    assert joined.returncode == 0 and "is the primary now: moved to" in joined.stdout
    assert not follow_only.exists()
    cluster.start(0)
    assert cluster.sql(0, "SELECT pg_is_in_recovery()") == [(True,)]
    wait_for(lambda: cluster.sql(0, "SELECT count(*) FROM after_failover") == [(0,)])


def test_a_new_pod_waits_for_a_primary(cluster):
    joined = cluster.join(1)
    assert joined.returncode == 1 and "may not start as one (no data" in joined.stderr
    joined = cluster.join(0)  # pod 0 without data: the entrypoint's initdb makes a primary
    assert joined.returncode == 0 and not cluster.data(0).exists()


def test_pod_0_without_data_makes_no_new_primary_beside_a_standby(cluster):
    """Pod 0 lost its volume while the primary is down and a standby answers: a database
    exists, so no initdb (clients would have written to an empty primary)."""
    cluster.initdb(0)
    cluster.start(0)
    assert cluster.join(1).returncode == 0
    cluster.start(1)
    cluster.stop(0)
    shutil.rmtree(cluster.data(0))
    joined = cluster.join(0)
    assert joined.returncode == 1
    assert f"no data while {cluster.address(1)} answers as a standby" in joined.stderr
    assert not cluster.data(0).exists()
    # once the standby is promoted, pod 0 clones it (into an empty PGDATA, as a volume has)
    cluster.sql(1, "SELECT pg_promote()")
    wait_for(lambda: cluster.sql(1, "SELECT pg_is_in_recovery()") == [(False,)])
    cluster.data(0).mkdir()
    joined = cluster.join(0)
    assert joined.returncode == 0, joined.stderr
    assert (cluster.data(0) / "PG_VERSION").is_file() and (cluster.data(0) / "standby.signal").is_file()


def test_every_timescaledb_pod_starts_through_the_script(rendered):
    """The init container runs this very script, from a ConfigMap of the render."""
    for overlay, docs in rendered.items():
        (database,) = [d for d in docs if d["kind"] == "StatefulSet"
                       and d["metadata"]["name"] == "timescaledb"]
        pod = database["spec"]["template"]["spec"]
        [init] = pod["initContainers"]
        assert init["command"] == ["sh", "/scripts/join.sh"], overlay
        assert {"PGDATA", "PGPASSWORD"} <= {e["name"] for e in init["env"]}
        (volume,) = [v for v in pod["volumes"] if v["name"] == "scripts"]
        (scripts,) = [d for d in docs if d["kind"] == "ConfigMap"
                      and d["metadata"]["name"] == volume["configMap"]["name"]]
        assert scripts["data"]["join.sh"] == SCRIPT.read_text()
