"""`kades` — the project's one command line: `kades --help` lists the subcommands.

Each subcommand lives in the module that owns the capability; this file only dispatches,
importing lazily so that `kades dlq list` does not pay for numpy.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import sys

from kades import exitcodes
from kades.settings import SettingsError

# name -> (module, function taking argv and returning an exit code, one-line help)
COMMANDS = {
    "up": ("kades.dev.localrun", "main_up", "start services, every function and the broker; feed the demo"),
    "down": ("kades.dev.localrun", "main_down", "stop everything `kades up` started"),
    "services": ("kades.dev.services", "main_services", "start/stop/show local Redis and PostgreSQL"),
    "migrate": ("kades.storage.migrate", "main_migrate", "apply the SQL migrations in order"),
    "retention": ("kades.storage.retention", "main_retention",
                  "remove stored rows past the retention horizon (where no policy does it)"),
    "broker": ("kades.broker", "main_broker", "run the development broker (reads eventing/*.yaml)"),
    "dlq": ("kades.deadletter.cli", "main_dlq", "list, show, replay or drop dead-lettered events"),
    "simulate": ("kades.simulate.cli", "main_simulate", "generate the labelled demo market stream"),
    "manifests": ("kades.manifests", "main_manifests",
                  "render knative/ Services from functions/*/func.yaml (--check: fail when stale)"),
    "solana-source": ("kades.solana.source", "main_solana_source",
                      "chain-block events from recorded Solana files (--replay) or an RPC endpoint"),
    "apikey": ("kades.api.cli", "main_apikey",
               "create, list or revoke API keys; mint a JWT for a key"),
    "sentiment": ("kades.sentiment.cli", "main_sentiment",
                  "score a CSV export: adds sentiment, compound and confidence columns"),
    "score": ("kades.temporal.score_cli", "main_score",
              "backtest a CSV series: every row with its anomaly score and top detector"),
    "run-function": ("kades.runfunction", "main_run_function",
                     "run one function's handler in-process on a JSON-lines file of events"),
}


def usage() -> str:
    lines = ["usage: kades [--version] COMMAND [ARGS...]   (kades COMMAND --help for its options)",
             "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "A file argument of - means stdin (input) or stdout (output).",
              "", "exit codes (every command):"]
    lines += [f"  {code}  {meaning}" for code, meaning in exitcodes.TABLE]
    return "\n".join(lines)


def version() -> str:
    return importlib.metadata.version("kades")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(usage(), file=sys.stderr)
        return exitcodes.USAGE
    if argv[0] in ("-h", "--help", "help"):
        print(usage())
        return exitcodes.OK
    if argv[0] in ("-V", "--version"):
        print(f"kades {version()}")
        return exitcodes.OK
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"kades: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return exitcodes.USAGE
    module_name, function_name, _ = COMMANDS[name]
    command = getattr(importlib.import_module(module_name), function_name)
    try:
        return int(command(rest) or 0)
    except BrokenPipeError:  # `kades ... | head`: the reader left, which is no error
        sys.stdout = open("/dev/null", "w")
        return exitcodes.OK
    except KeyboardInterrupt:  # Ctrl-C: stopped as asked, no traceback (128 + SIGINT)
        print(f"kades {name}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except SettingsError as error:  # a malformed KADES_* variable: say which, no traceback
        print(f"kades {name}: {error}", file=sys.stderr)
        return exitcodes.USAGE


INTERRUPTED = 130  # what a shell reports for a command ended by Ctrl-C


if __name__ == "__main__":
    sys.exit(main())
