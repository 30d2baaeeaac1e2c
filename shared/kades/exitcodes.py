"""The exit codes of every `kades` command, in one table (docs and `kades --help` show it)."""
from __future__ import annotations

OK = 0           # the command did what was asked
FAILURE = 1      # it ran and found a failure (a stale manifest, a failed migration, a bad row)
USAGE = 2        # the command line was wrong (argparse's own code for usage errors)
UNAVAILABLE = 3  # a dependency could not be reached: Redis, PostgreSQL, the broker, an RPC node

TABLE = ((OK, "ok"), (FAILURE, "the command ran and found a failure"),
         (USAGE, "usage error"), (UNAVAILABLE, "a dependency is unreachable"))
