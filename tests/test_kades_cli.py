"""`kades` itself: --version, the exit-code table in --help, usage errors, and help text on
every option of every subcommand."""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from kades import exitcodes
from kades.cli import COMMANDS, main


def test_version_comes_from_the_package_metadata(capsys):
    assert main(["--version"]) == exitcodes.OK
    assert capsys.readouterr().out.strip() == f"kades {importlib.metadata.version('kades')}"
    assert main(["-V"]) == exitcodes.OK


def test_help_shows_every_command_the_exit_code_table_and_the_dash_convention(capsys):
    assert main(["--help"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)
    for code, meaning in exitcodes.TABLE:
        assert f"  {code}  {meaning}" in out
    assert "- means stdin" in out
    assert [code for code, _ in exitcodes.TABLE] == [0, 1, 2, 3]


@pytest.mark.parametrize("argv", [[], ["no-such-command"]])
def test_a_missing_or_unknown_command_is_a_usage_error(argv, capsys):
    assert main(argv) == exitcodes.USAGE
    assert "usage: kades" in capsys.readouterr().err


def test_a_bad_option_of_a_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["simulate", "--no-such-option"])
    assert stop.value.code == exitcodes.USAGE


class _Parsed(Exception):
    """Raised instead of parsing: carries the parser a subcommand built."""

    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__(parser.prog)
        self.parser = parser


def parser_of(name: str, monkeypatch) -> argparse.ArgumentParser:
    """The argparse parser subcommand `name` builds, caught when it starts parsing."""
    def catch(self, args=None, namespace=None):
        raise _Parsed(self)

    module, function, _ = COMMANDS[name]
    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        with pytest.raises(_Parsed) as parsed:
            getattr(importlib.import_module(module), function)([])
    return parsed.value.parser


def without_help(parser: argparse.ArgumentParser) -> list[str]:
    """`prog option` for every option (and sub-subcommand) of `parser` that has no help text."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest for choice in action._choices_actions if choice.help}
            missing += [f"{parser.prog} {n}" for n in action.choices if n not in helped]
            for subparser in action.choices.values():
                missing += without_help(subparser)
        elif action.option_strings and not action.help:
            missing.append(f"{parser.prog} {'/'.join(action.option_strings)}")
    return missing


def test_every_option_of_every_subcommand_has_help_text(monkeypatch):
    missing = [entry for name in COMMANDS for entry in without_help(parser_of(name, monkeypatch))]
    assert missing == []


def test_the_walk_would_find_an_option_without_help():
    parser = argparse.ArgumentParser(prog="kades demo")
    parser.add_argument("--documented", help="says what it does")
    parser.add_argument("--bare")
    commands = parser.add_subparsers()
    commands.add_parser("sub").add_argument("--also-bare")
    assert sorted(without_help(parser)) == ["kades demo --bare", "kades demo sub",
                                            "kades demo sub --also-bare"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_answers_help(name):
    run = subprocess.run([sys.executable, "-m", "kades.cli", name, "--help"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == exitcodes.OK, run.stderr
    assert run.stdout.startswith("usage: kades ")


def test_the_readme_shows_the_same_exit_code_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The `kades` command", 1)[1].split("\n## ", 1)[0]
    for code, meaning in exitcodes.TABLE:
        assert f"| {code} | {meaning}" in section
    assert "`-` for stdin or stdout" in section


def test_a_malformed_setting_is_one_line_naming_it_not_a_traceback(monkeypatch, capsys):
    monkeypatch.setenv("KADES_DEDUP_TTL_S", "7d")
    assert main(["migrate", "--status"]) == 2
    err = capsys.readouterr().err
    assert "KADES_DEDUP_TTL_S='7d'" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["retention", "--database-url", "foo"],  # psycopg's ProgrammingError: a traceback
    ["retention", "--database-url", "http://x/y"],
    ["migrate", "--status", "--database-url", "foo"],  # "the database refused", exit 1
])
def test_a_database_url_libpq_cannot_read_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == exitcodes.USAGE
    assert "--database-url" in capsys.readouterr().err


@pytest.mark.parametrize("source", ["", " ", "a b", "/x\u0007"])
def test_a_simulated_source_no_function_takes_is_a_usage_error(source, capsys):
    """`--source ''` wrote events that run-function and the functions then refused, each."""
    with pytest.raises(SystemExit) as ended:
        main(["simulate", "--minutes", "0.1", "--source", source])
    assert ended.value.code == exitcodes.USAGE
    assert "--source" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["notaurl", "http://[::1", "http://h:99999/"])
def test_a_subscriber_that_is_no_url_is_a_usage_error(capsys, url):
    """It was accepted, and every delivery to it then failed (or a traceback)."""
    with pytest.raises(SystemExit) as ended:
        main(["broker", "--subscriber", f"market-aggregator={url}"])
    assert ended.value.code == exitcodes.USAGE
    assert "an http(s) URL" in capsys.readouterr().err


@pytest.mark.parametrize("variable, value, command", [
    ("KADES_REDIS_URL", "garbage", ["dlq", "list"]),
    ("KADES_DATABASE_URL", "mysql://kades@db/kades", ["apikey", "list"]),
])
def test_a_url_of_the_wrong_scheme_is_a_malformed_setting(variable, value, command,
                                                          monkeypatch, capsys):
    monkeypatch.setenv(variable, value)  # was a traceback (Redis), an exit 1 (PostgreSQL)
    assert main(command) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"kades {command[0]}: {variable}={value!r}: expected a ")
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["migrate", "--status", "--wait-s", "nan"],  # waited for ever (clock() >= nan is never true)
    ["migrate", "--status", "--wait-s", "-1"],
    ["retention", "--keep-days", "nan"],  # a traceback from PostgreSQL's interval
    ["retention", "--keep-days", "inf"],
    ["broker", "--workers", "0"],  # accepted, and no unordered Trigger ever delivered
    ["broker", "--workers", "1"],  # one at a time: in order, kinder than a cluster's Broker
    ["broker", "--port", "99999"],  # an OverflowError, logged
    ["broker", "--redis-wait-s", "nan"],
    ["up", "--rate", "0"],  # a ZeroDivisionError after the system was restarted
    ["up", "--minutes", "0"],
])
def test_an_out_of_range_number_is_a_usage_error_before_anything_runs(argv, capsys):
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == exitcodes.USAGE
    assert "expected" in capsys.readouterr().err


def test_broker_workers_from_the_environment_are_bounded_too(monkeypatch, capsys):
    monkeypatch.setenv("KADES_BROKER_WORKERS", "1")
    with pytest.raises(SystemExit) as ended:
        main(["broker"])
    assert ended.value.code == exitcodes.USAGE
    assert "KADES_BROKER_WORKERS=1: expected a whole number from 2" in capsys.readouterr().err


def test_ctrl_c_ends_a_command_without_a_traceback(monkeypatch, capsys):
    import kades.cli as cli

    def interrupted(argv):
        raise KeyboardInterrupt
    monkeypatch.setitem(cli.COMMANDS, "score", ("kades.temporal.score_cli", "main_score", ""))
    monkeypatch.setattr("kades.temporal.score_cli.main_score", interrupted)
    assert main(["score", "x.csv"]) == cli.INTERRUPTED == 130
    assert capsys.readouterr().err == "kades score: interrupted\n"
