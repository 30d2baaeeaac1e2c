"""The mesh of the reliability tests, on the session's test Redis db and test database."""
from __future__ import annotations

import pytest

from mesh import Mesh


@pytest.fixture
def mesh(kades_env, redis_conn, db_conn, tmp_path):
    system = Mesh(tmp_path, redis_url=kades_env.redis_url, database_url=kades_env.database_url,
                  redis_cluster=kades_env.redis_cluster)
    try:
        system.start()
        yield system
    finally:
        system.stop()
