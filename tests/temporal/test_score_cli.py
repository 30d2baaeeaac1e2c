"""`kades score`: any CSV in, every row out with its anomaly score and top detector."""
from __future__ import annotations

import csv
import io
import os
import random
import stat
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest

from kades import exitcodes
from kades.cli import main as kades
from kades.simulate.series import simulate_series
from kades.temporal.score_cli import parse_time
from kades.temporal.scoring import raw_score
from terminal import Terminal


def write_series(path, kind="noisy", seed=1, *, shift=0.0, time_format="iso",
                 columns=("timestamp", "value")):
    series = simulate_series(kind, seed=seed, points=600, anomalies=2)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*columns, "comment"])
        for t, v in zip(series.times, series.values):
            moment = datetime.fromtimestamp(t, timezone.utc)
            when = {"iso": moment.isoformat(), "ms": str(int(t * 1000)),
                    # a spreadsheet's unpadded date with slashes, a SQL export's zone name
                    "loose": (f"{moment:%Y}/{moment.month}/{moment.day} "
                              f"{moment.hour}:{moment:%M:%S} UTC"),
                    "rfc2822": f"{moment:%a, %d %b %Y %H:%M:%S} GMT"}[time_format]
            writer.writerow([when, v + shift, "kept as is"])
    return series


def read(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_row_comes_back_with_a_score_and_the_anomalies_score_high(tmp_path, capsys):
    series = write_series(tmp_path / "in.csv")
    assert kades(["score", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]) == 0
    rows = read(tmp_path / "out.csv")
    assert len(rows) == len(series.values) and rows[0]["comment"] == "kept as is"
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
    alerted = [index for index, r in enumerate(rows) if r["alert"]]
    score = raw_score([parse_time(rows[i]["timestamp"]) for i in alerted],
                      [(l["start"], l["end"] + 600) for l in series.labels], "standard")
    print(f"\nkades score on a noisy series: {score.detected}/{score.windows} volatility "
          f"changes alerted, {score.false_positives} false alerts")
    # The first change is alerted; the second comes once the first volatile stretch is the
    # series' normal and surprises too little (the likelihood's point): not asserted.
    assert score.detected >= 1 and score.false_positives == 0
    first = alerted[0]
    assert float(rows[first]["anomaly_score"]) >= 0.5 > float(rows[first + 20]["anomaly_score"])
    assert {r["top_detector"] for r in rows if float(r["anomaly_score"]) >= 0.5} <= {
        "return_spike", "multi_window", "volatility_regime", "pump"}


def test_custom_columns_epoch_milliseconds_and_negative_values(tmp_path):
    write_series(tmp_path / "in.csv", shift=-100.0, time_format="ms", columns=("t", "v"))
    code = kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"),
                  "--timestamp-column", "t", "--value-column", "v"])
    rows = read(tmp_path / "out.csv")
    assert code == 0 and max(float(r["anomaly_score"]) for r in rows) > 0.5


def test_a_signed_series_scores_alike_in_any_unit(tmp_path):
    """A series that goes negative is scored on linear scale, in its unit (the median of
    its nonzero |values|): before, the detectors' absolute floors (1e-4) hid every move of a
    series measured in millionths."""
    rng = random.Random(5)
    noise = [rng.gauss(0, 1) - (20.0 if 4000 <= i < 4030 else 0.0) for i in range(5000)]
    alerted = []
    for unit in (1e-6, 1.0, 1e4):
        path = tmp_path / f"signed-{unit}.csv"
        path.write_text("timestamp,value\n" + "".join(
            f"{60 * i},{unit * v!r}\n" for i, v in enumerate(noise)))
        assert kades(["score", str(path), "-o", str(tmp_path / "out.csv")]) == 0
        alerted.append([i for i, r in enumerate(read(tmp_path / "out.csv")) if r["alert"]])
    assert alerted[0] == alerted[1] == alerted[2]
    assert 4000 in alerted[0] and len(alerted[0]) <= 3  # the drop, its end


def test_missing_column_is_named_and_nothing_is_written(tmp_path, capsys):
    # "when": no name of times (a column named time would be taken: test_score_cli_inputs)
    write_series(tmp_path / "in.csv", columns=("when", "price"))
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]) == 1
    error = capsys.readouterr().err
    assert "missing column(s) 'timestamp', 'value'" in error and "'price'" in error
    assert "--timestamp-column and --value-column name the columns to read" in error
    assert not (tmp_path / "out.csv").exists()


def test_every_unparsable_row_is_reported(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("timestamp,value\n2024-01-01T00:00:00Z,1.5\n"
                                      "yesterday,2\n2024-01-01T00:02:00Z,abc\n"
                                      "2024-01-01T00:03:00Z,inf\n2024-01-01T00:04:00Z,nan\n")
    assert kades(["score", str(tmp_path / "bad.csv")]) == 1
    error = capsys.readouterr().err
    assert "3 unparsable field(s)" in error
    assert "line 3: timestamp 'yesterday'" in error and "line 4: value 'abc'" in error
    assert "line 5: value 'inf' is not finite" in error and "line 6" not in error  # nan: a gap


@pytest.mark.parametrize("time_format", ["loose", "rfc2822"])
def test_times_as_exports_write_them_score_as_iso_8601_does(tmp_path, time_format):
    # "2024/1/5 3:00:00 UTC" and RFC 2822 were "unparsable": the file was refused
    write_series(tmp_path / "iso.csv")
    write_series(tmp_path / "other.csv", time_format=time_format)
    for name in ("iso", "other"):
        assert kades(["score", str(tmp_path / f"{name}.csv"),
                      "-o", str(tmp_path / f"{name}.out.csv")]) == 0
    iso, other = read(tmp_path / "iso.out.csv"), read(tmp_path / "other.out.csv")
    assert [r["anomaly_score"] for r in iso] == [r["anomaly_score"] for r in other]
    assert sum(bool(r["alert"]) for r in other) >= 1  # the series' anomalies, not all zeros
    assert [r["alert"] for r in iso] == [r["alert"] for r in other]


@pytest.mark.parametrize("text", ["Fri, 05 Jan 2024 09:30:00 CET", "Fri, 05 Jan 2024 09:30 PM",
                                  "Jan 05 2024 09:30:00 CEST", "2024/1/5 \u0669:30:00",
                                  "Fri, \u0660\u0665 Jan 2024 09:30:00 GMT", "05/01/2024 09:30"])
def test_a_time_that_could_be_read_hours_off_is_refused(text):
    # email's parser read an unknown zone and AM/PM as UTC; \d and int() read other digits
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_time(text)


def test_numbers_python_reads_but_no_export_writes_are_unparsable(tmp_path, capsys):
    # float() took "1_000" as 1000 and Arabic-Indic digits as digits: a wrong column scored
    (tmp_path / "odd.csv").write_text("timestamp,value\n2024-01-01T00:00:00Z,1_000\n"
                                      "1_704_067_260,2\n2024-01-01T00:02:00Z,\u0661\u0662\n"
                                      "2024-01-01T00:03:00Z, 1.5e3 \n", encoding="utf-8")
    assert kades(["score", str(tmp_path / "odd.csv")]) == 1
    error = capsys.readouterr().err
    assert "3 unparsable field(s)" in error
    assert "line 2: value '1_000'" in error and "line 3: timestamp '1_704_067_260'" in error
    assert "line 4: value" in error and "line 5" not in error


def test_a_quoted_header_name_holding_a_comma_does_not_make_commas_the_separator(tmp_path,
                                                                                capsys):
    with open(tmp_path / "semi.csv", "w", newline="") as out:
        out.write('"time, UTC";"price, USD"\n')
        for minute in range(30):
            out.write(f"2024-01-01T00:{minute:02d}:00Z;{1 + minute / 100:.2f}\n")
    assert kades(["score", str(tmp_path / "semi.csv"), "--timestamp-column", "time, UTC",
                  "--value-column", "price, USD", "-o", str(tmp_path / "out.csv")]) == 0
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows[0] == ["time, UTC", "price, USD", "anomaly_score", "top_detector", "alert"]
    assert len(rows) == 31 and all(len(row) == 5 for row in rows)


def test_rows_without_a_value_are_written_back_unscored_and_change_nothing(tmp_path, capsys):
    """A gap in a recording (an empty cell, NaN, NA, null) is no tick for the function, so
    the other rows score exactly as if the gap rows were not in the file."""
    write_series(tmp_path / "full.csv")
    with open(tmp_path / "full.csv", newline="") as handle:
        header, *table = list(csv.reader(handle))
    gaps = {index: cell for index, cell in zip(range(40, 600, 37),
                                               ["", "NaN", "nan", "NA", "null", " ", "None"] * 3)}
    with open(tmp_path / "gaps.csv", "w", newline="") as out, \
            open(tmp_path / "kept.csv", "w", newline="") as kept:
        csv.writer(out).writerow(header), csv.writer(kept).writerow(header)
        for index, row in enumerate(table):
            if index in gaps:
                csv.writer(out).writerow([row[0], gaps[index], row[2]])
            else:
                csv.writer(out).writerow(row), csv.writer(kept).writerow(row)
    assert kades(["score", str(tmp_path / "gaps.csv"), "-o", str(tmp_path / "gaps_out.csv")]) == 0
    assert (f"{len(table) - len(gaps)} rows scored, {len(gaps)} without a value written back "
            f"unscored") in capsys.readouterr().err
    assert kades(["score", str(tmp_path / "kept.csv"), "-o", str(tmp_path / "kept_out.csv")]) == 0
    scored = read(tmp_path / "gaps_out.csv")
    assert len(scored) == len(table)
    assert all(scored[i]["anomaly_score"] == scored[i]["alert"] == "" for i in gaps)
    columns = ("timestamp", "anomaly_score", "top_detector", "alert")
    assert ([[r[c] for c in columns] for i, r in enumerate(scored) if i not in gaps]
            == [[r[c] for c in columns] for r in read(tmp_path / "kept_out.csv")])
    assert any(r["alert"] for r in scored)


@pytest.mark.parametrize("order", ["newest first", "shuffled"])
def test_rows_out_of_time_order_score_as_in_time_order(tmp_path, capsys, order):
    """Exports newest first are common; the detectors never look back, so the rows are taken
    in time order and written back in the file's."""
    write_series(tmp_path / "in.csv")
    with open(tmp_path / "in.csv", newline="") as handle:
        header, *table = list(csv.reader(handle))
    moved = table[::-1] if order == "newest first" else random.Random(5).sample(table, len(table))
    with open(tmp_path / "moved.csv", "w", newline="") as out:
        csv.writer(out).writerows([header, *moved])
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "ref.csv")]) == 0
    assert "earlier than a row above" not in capsys.readouterr().err
    assert kades(["score", str(tmp_path / "moved.csv"), "-o", str(tmp_path / "out.csv")]) == 0
    assert "earlier than a row above them: scored in time order" in capsys.readouterr().err
    out, ref = read(tmp_path / "out.csv"), read(tmp_path / "ref.csv")
    assert [r["timestamp"] for r in out] == [row[0] for row in moved]  # the file's order
    by_time = {r["timestamp"]: (r["anomaly_score"], r["alert"]) for r in ref}
    assert {r["timestamp"]: (r["anomaly_score"], r["alert"]) for r in out} == by_time
    assert any(alert for _, alert in by_time.values())


def test_a_file_of_many_tokens_is_scored_token_by_token(tmp_path, capsys):
    """Interleaved rows of two tokens (one priced in the hundreds, one around -100: scored on
    its values, not their logs) score exactly as each token's rows alone in a file."""
    write_series(tmp_path / "a.csv", seed=1)
    write_series(tmp_path / "b.csv", kind="spiky", seed=2, shift=-200.0)
    tables = {}
    for token in ("a", "b"):
        with open(tmp_path / f"{token}.csv", newline="") as handle:
            header, *tables[token] = list(csv.reader(handle))
    with open(tmp_path / "both.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["symbol", *header])
        for row_a, row_b in zip(tables["a"], tables["b"]):
            writer.writerows([["a", *row_a], ["b", *row_b]])
    assert kades(["score", str(tmp_path / "both.csv"), "-o", str(tmp_path / "both_out.csv"),
                  "--token-column", "symbol"]) == 0
    assert "in 2 tokens" in capsys.readouterr().err
    both = read(tmp_path / "both_out.csv")
    columns = ("timestamp", "anomaly_score", "top_detector", "alert")
    for token in ("a", "b"):
        assert kades(["score", str(tmp_path / f"{token}.csv"),
                      "-o", str(tmp_path / f"{token}_out.csv")]) == 0
        alone = [[r[c] for c in columns] for r in read(tmp_path / f"{token}_out.csv")]
        assert [[r[c] for c in columns] for r in both if r["symbol"] == token] == alone
        assert any(row[3] for row in alone)
    # One series of both would be nonsense: the jumps between them are all it sees.
    assert kades(["score", str(tmp_path / "both.csv"), "-o", str(tmp_path / "mixed.csv")]) == 0
    assert [r["alert"] for r in read(tmp_path / "mixed.csv")] != [r["alert"] for r in both]


def test_spaces_around_header_names_are_not_part_of_them(tmp_path):
    write_series(tmp_path / "plain.csv")
    text = (tmp_path / "plain.csv").read_text().splitlines(keepends=True)
    (tmp_path / "spaced.csv").write_text("timestamp, value ,comment\n" + "".join(text[1:]))
    assert kades(["score", str(tmp_path / "spaced.csv"), "-o", str(tmp_path / "out.csv")]) == 0
    assert kades(["score", str(tmp_path / "plain.csv"), "-o", str(tmp_path / "ref.csv")]) == 0
    alerts = [r["alert"] for r in read(tmp_path / "out.csv")]
    assert alerts == [r["alert"] for r in read(tmp_path / "ref.csv")] and any(alerts)


def test_a_folder_is_scored_file_by_file(tmp_path):
    (tmp_path / "in").mkdir()
    for seed in (1, 2):
        write_series(tmp_path / "in" / f"s{seed}.csv", seed=seed)
    assert kades(["score", "--dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s1.csv", "s2.csv"]


def test_a_corpus_in_subfolders_keeps_its_layout_and_a_rerun_skips_its_output(tmp_path, capsys):
    """NAB-like: data/<kind>/*.csv; the output inside the input folder is not scored again."""
    for kind, seed in (("traffic", 1), ("machines", 2), ("machines", 3)):
        (tmp_path / "data" / kind).mkdir(parents=True, exist_ok=True)
        write_series(tmp_path / "data" / kind / f"s{seed}.csv", seed=seed)
    args = ["score", "--dir", str(tmp_path / "data"),
            "--output-dir", str(tmp_path / "data" / "out")]
    assert kades(args) == 0
    scored = sorted(str(p.relative_to(tmp_path / "data" / "out"))
                    for p in (tmp_path / "data" / "out").rglob("*.csv"))
    assert scored == ["machines/s2.csv", "machines/s3.csv", "traffic/s1.csv"]
    assert "3 of 3 files scored" in capsys.readouterr().err
    assert kades(args) == 0 and "3 of 3 files scored" in capsys.readouterr().err


def test_a_folder_without_csvs_or_no_folder_is_a_failure(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for folder in ("empty", "missing"):
        code = kades(["score", "--dir", str(tmp_path / folder),
                      "--output-dir", str(tmp_path / "o")])
        error = capsys.readouterr().err
        assert code == exitcodes.FAILURE
        assert ("no *.csv in it" if folder == "empty" else "not a folder") in error
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("output_dir", ["afile", "afile/out"])
def test_an_output_folder_that_cannot_be_one_is_a_failure_not_a_traceback(tmp_path, capsys,
                                                                          output_dir):
    """Its creation, outside the per-file error handling, raised FileExistsError or
    NotADirectoryError."""
    (tmp_path / "in").mkdir()
    write_series(tmp_path / "in" / "a.csv")
    (tmp_path / "afile").write_text("not a folder\n")
    code = kades(["score", "--dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / output_dir)])
    error = capsys.readouterr().err
    assert code == exitcodes.FAILURE and "Traceback" not in error
    assert "0 of 1 files scored" in error and "a.csv" in error


@pytest.mark.parametrize("text, expected", [("2024-01-01T00:00:00Z", 1704067200.0),
                                            ("2024-01-01 00:00:00", 1704067200.0),
                                            ("1704067200", 1704067200.0),
                                            ("1704067200000", 1704067200.0),
                                            ("1704067200000000", 1704067200.0),
                                            ("1704067200000000000", 1704067200.0)])
def test_parse_time(text, expected):
    assert parse_time(text) == expected


def test_dash_reads_stdin_and_writes_stdout(tmp_path, monkeypatch, capsys):
    write_series(tmp_path / "in.csv")
    monkeypatch.setattr("sys.stdin", io.StringIO((tmp_path / "in.csv").read_text()))
    assert kades(["score", "-", "--output", "-"]) == exitcodes.OK
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert len(rows) == 600 and rows[0]["comment"] == "kept as is"
    assert read_scores(rows) == read_scores(score_to_rows(tmp_path))
    assert "kades score: -: 600 rows scored" in captured.err


def score_to_rows(tmp_path) -> list[dict]:
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]) == 0
    return read(tmp_path / "out.csv")


def read_scores(rows: list[dict]) -> list[str]:
    return [r["anomaly_score"] for r in rows]


@pytest.mark.slow
def test_bad_rows_on_stdin_are_a_failure(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("timestamp,value\nyesterday,1\n"))
    assert kades(["score", "-"]) == exitcodes.FAILURE
    captured = capsys.readouterr()
    assert captured.out == "" and "kades score: -: 1 unparsable field(s)" in captured.err


def run_score(tmp_path, *options) -> tuple[int, str, str]:
    """`kades score -` in a process of its own, stdin from a file, stderr to a pipe: exit
    code, stdout, stderr (bytes decoded as they are: text mode would turn `\r` into `\n`)."""
    with open(tmp_path / "in.csv", "rb") as stdin:
        run = subprocess.run([sys.executable, "-m", "kades.cli", "score", "-", *options],
                             stdin=stdin, capture_output=True, timeout=120)
    return run.returncode, run.stdout.decode(), run.stderr.decode()


@pytest.mark.slow
def test_a_redirected_stderr_gets_no_progress_frames(tmp_path):
    write_series(tmp_path / "in.csv")
    code, out, err = run_score(tmp_path)
    assert code == 0, err
    assert len(out.splitlines()) == 601
    assert "\r" not in err and err == "kades score: -: 600 rows scored\n"
    _, _, err = run_score(tmp_path, "--progress")  # the same run with the bar: frames show
    assert "\r" in err and "stdin: 100%" in err and "600/600" in err


def test_a_terminal_gets_a_progress_bar(tmp_path, monkeypatch):
    write_series(tmp_path / "in.csv")
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]) == 0
    assert "\r" in terminal.getvalue() and "600/600" in terminal.getvalue()
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"),
                  "--no-progress"]) == 0
    assert "\r" not in terminal.getvalue()


def test_the_alert_column_is_what_temporal_analysis_raises(tmp_path):
    """Same ticks through `kades score` (with --volume-column / --liquidity-column) and
    through the function's analyse_token: the same anomaly types at the same rows."""
    from kades.simulate.market import simulate_market
    from kades.temporal.function import analyse_token, group_ticks

    sim = simulate_market(seed=3, tokens=1, minutes=30)
    with open(tmp_path / "in.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["time", "price", "vol", "liq"])
        for tick in sim.ticks:
            writer.writerow([tick["time"], tick["price"], tick["volume"], tick.get("liquidity") or ""])
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"),
                  "--timestamp-column", "time", "--value-column", "price",
                  "--volume-column", "vol", "--liquidity-column", "liq"]) == 0
    rows = read(tmp_path / "out.csv")
    shown = [(r["time"], r["alert"]) for r in rows if r["alert"]]
    [(token, series)] = group_ticks(sim.ticks).items()
    _, anomalies = analyse_token(token, None, series)
    raised = [(a["time"], a["anomaly_type"]) for a in anomalies]
    print(f"\nalert column: {len(shown)} alerts on {len(rows)} rows, "
          f"{len(sim.labels)} labelled anomalies")
    assert shown == raised and len(shown) >= 1


def test_a_named_volume_column_must_exist(tmp_path, capsys):
    write_series(tmp_path / "in.csv")
    code = kades(["score", str(tmp_path / "in.csv"), "--volume-column", "volume"])
    assert code == exitcodes.FAILURE and "missing column(s) 'volume'" in capsys.readouterr().err


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolons_and_tabs_are_read_and_written_back(tmp_path, sep):
    """SKAB's recordings and many spreadsheet exports separate fields by semicolons."""
    series = write_series(tmp_path / "comma.csv")
    with open(tmp_path / "comma.csv", newline="") as handle:
        table = list(csv.reader(handle))
    with open(tmp_path / "in.csv", "w", newline="") as out:
        csv.writer(out, delimiter=sep).writerows(table)
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]) == 0
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=sep))
        handle.seek(0)
        assert handle.readline().rstrip("\r\n").split(sep)[-3:] == [
            "anomaly_score", "top_detector", "alert"]
    assert len(rows) == len(series.values) and rows[0]["comment"] == "kept as is"
    # The same scores as the comma-separated original's.
    assert kades(["score", str(tmp_path / "comma.csv"), "-o", str(tmp_path / "ref.csv")]) == 0
    assert [r["alert"] for r in rows] == [r["alert"] for r in read(tmp_path / "ref.csv")]
    assert any(r["alert"] for r in rows)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    write_series(tmp_path / "plain.csv")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "plain.csv").read_bytes())
    assert kades(["score", str(tmp_path / "bom.csv"), "-o", str(tmp_path / "out.csv")]) == 0
    assert list(read(tmp_path / "out.csv")[0])[0] == "timestamp"


def test_the_input_as_its_own_output_is_scored_not_emptied(tmp_path, capsys):
    write_series(tmp_path / "s.csv")
    rows = len(read(tmp_path / "s.csv"))
    assert kades(["score", str(tmp_path / "s.csv"), "-o", str(tmp_path / "s.csv")]) == 0
    scored = read(tmp_path / "s.csv")
    assert len(scored) == rows and all(r["anomaly_score"] for r in scored)
    assert kades(["score", str(tmp_path / "s.csv"), "-o", str(tmp_path / "s.csv")]) == 0
    assert list(read(tmp_path / "s.csv")[0]).count("anomaly_score") == 1  # anew, not twice


@pytest.mark.parametrize("content, said", [
    ("timestamp,value\n1,1\n2,2\n3,3,EXTRA\n", "line 4: 1 field(s) more than the header's 2"),
    ("timestamp,value,value\n1,2,3\n", "the header names 'value' more than once"),
    ("timestamp,value\n0,-1\n60,1e200\n", "beyond"),
    (b"timestamp,value\n1,\xff\xfe\n", "not UTF-8 text"),
    ("timestamp,value\n1," + "9" * 140_000 + "\n", "not a CSV this can read")])
def test_what_made_a_traceback_or_a_half_written_file_is_named_and_leaves_the_output(
        tmp_path, capsys, content, said):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_bytes(content if isinstance(content, bytes) else content.encode())
    target.write_text("what was there\n")
    assert kades(["score", str(source), "-o", str(target)]) == exitcodes.FAILURE
    assert said in capsys.readouterr().err
    assert target.read_text() == "what was there\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv", "out.csv"]  # no .part


def test_a_pipe_read_once_is_read_whole(tmp_path, capsys):
    """`kades score <(...)`: the separator, the check and the scoring each read the input."""
    write_series(tmp_path / "s.csv")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: fifo.write_bytes((tmp_path / "s.csv").read_bytes()))
    feeder.start()
    assert kades(["score", str(fifo), "-o", str(tmp_path / "o.csv")]) == 0
    feeder.join()
    assert len(read(tmp_path / "o.csv")) == len(read(tmp_path / "s.csv"))


def test_a_header_alone_comes_back_with_the_columns(tmp_path):
    (tmp_path / "h.csv").write_text("timestamp;value\n")
    assert kades(["score", str(tmp_path / "h.csv"), "-o", str(tmp_path / "o.csv")]) == 0
    assert (tmp_path / "o.csv").read_text().strip() == "timestamp;value;anomaly_score;top_detector;alert"


def test_a_device_as_output_is_written_not_replaced(tmp_path):
    write_series(tmp_path / "s.csv")
    assert kades(["score", str(tmp_path / "s.csv"), "-o", "/dev/null"]) == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("options", [["--output-dir", "x", "in.csv"],
                                     ["--dir", "d", "--output-dir", "o", "-o", "f"]])
def test_options_that_do_nothing_together_are_a_usage_error(options):
    with pytest.raises(SystemExit) as caught:
        kades(["score", *options])
    assert caught.value.code == 2


def test_a_link_as_output_writes_its_file_and_stays_a_link(tmp_path):
    write_series(tmp_path / "s.csv")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "out.csv").write_text("old\n")
    (tmp_path / "out.csv").symlink_to(tmp_path / "real" / "out.csv")
    assert kades(["score", str(tmp_path / "s.csv"), "-o", str(tmp_path / "out.csv")]) == 0
    assert (tmp_path / "out.csv").is_symlink()
    assert len(read(tmp_path / "real" / "out.csv")) == len(read(tmp_path / "s.csv"))


def write_rows(path, times, values=None, header="timestamp,value"):
    """A CSV of `times` (text as given) and a slow random walk (or `values`)."""
    rng = random.Random(3)
    values = values or [100 * (1 + 0.001 * rng.gauss(0, 1)) ** i for i in range(len(times))]
    path.write_text(header + "\n" + "".join(f"{t},{v}\n" for t, v in zip(times, values)))


def test_rows_less_than_a_second_apart_are_not_counted_as_scored(tmp_path, capsys):
    """A 10 Hz sensor: the policy takes one row a second (MIN_STEP_S); the summary said
    "1200 rows scored" when 9 in 10 came back with score 0, unscored."""
    write_rows(tmp_path / "fast.csv", [f"{1704067200 + i / 10:.1f}" for i in range(1200)])
    assert kades(["score", str(tmp_path / "fast.csv"), "-o", str(tmp_path / "o.csv")]) == 0
    error = capsys.readouterr().err
    assert "kades score: " in error and ": 120 rows scored, 1080 less than 1 s after" in error
    assert "most rows (1080 of 1200)" in error and "aggregate" in error
    # a few repeated or sub-second rows are counted, without the advice
    times = [1704067200 + 60 * i for i in range(600)]
    times[100:100] = [times[99] + 0.5, times[99] + 0.5]
    write_rows(tmp_path / "few.csv", times)
    assert kades(["score", str(tmp_path / "few.csv"), "-o", str(tmp_path / "o.csv")]) == 0
    error = capsys.readouterr().err
    assert "600 rows scored, 2 less than 1 s after the scored row before them" in error
    assert "warning" not in error


def test_timestamps_spanning_less_than_a_minute_are_warned_of(tmp_path, capsys):
    """Excel serial dates (days since 1900) read as epoch seconds: all on 1970-01-01."""
    write_rows(tmp_path / "excel.csv", [f"{45292 + i / 1440:.4f}" for i in range(30)])
    assert kades(["score", str(tmp_path / "excel.csv"), "-o", str(tmp_path / "o.csv")]) == 0
    error = capsys.readouterr().err
    assert "warning: all 30 timestamps fall within" in error and "1970-01-01T12:34:52" in error
    assert "Excel" in error
    write_series(tmp_path / "fine.csv")
    assert kades(["score", str(tmp_path / "fine.csv"), "-o", str(tmp_path / "o.csv")]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("compact, iso", [("20240131", "2024-01-31"),
                                          ("20240131093005", "2024-01-31T09:30:05"),
                                          ("19991231235959", "1999-12-31T23:59:59Z")])
def test_yyyymmdd_and_yyyymmddhhmmss_are_dates_not_epoch_numbers(compact, iso):
    assert parse_time(compact) == parse_time(iso)  # were 1970-08-23 and the year 2611


@pytest.mark.parametrize("text, expected", [("20241301", 20241301.0),  # month 13: seconds
                                            ("20240230", 20240230.0),  # no Feb 30th
                                            ("1704067200", 1704067200.0),
                                            ("20240131.0", 20240131.0)])  # not an integer
def test_digits_that_are_no_calendar_date_stay_epoch_numbers(text, expected):
    assert parse_time(text) == expected


def test_a_file_of_yyyymmddhhmmss_scores_as_iso_8601(tmp_path):
    write_series(tmp_path / "iso.csv")
    with open(tmp_path / "iso.csv", newline="") as handle:
        header, *table = list(csv.reader(handle))
    with open(tmp_path / "compact.csv", "w", newline="") as out:
        csv.writer(out).writerows([header] + [
            [f"{datetime.fromisoformat(row[0]):%Y%m%d%H%M%S}", *row[1:]] for row in table])
    for name in ("iso", "compact"):
        assert kades(["score", str(tmp_path / f"{name}.csv"),
                      "-o", str(tmp_path / f"{name}.out.csv")]) == 0
    iso, compact = read(tmp_path / "iso.out.csv"), read(tmp_path / "compact.out.csv")
    assert [(r["anomaly_score"], r["alert"]) for r in iso] == [
        (r["anomaly_score"], r["alert"]) for r in compact]
    assert any(r["alert"] for r in compact)


def test_a_column_mixing_digit_dates_and_epoch_numbers_is_refused(tmp_path, capsys):
    """A count of seconds passing 10,000,000: 10000101 is also 1000-01-01."""
    write_rows(tmp_path / "count.csv", [str(t) for t in range(10000090, 10000120)])
    assert kades(["score", str(tmp_path / "count.csv")]) == exitcodes.FAILURE
    error = capsys.readouterr().err
    assert "'10000101'" in error and "line 13" in error and "'10000090'" in error


@pytest.mark.parametrize("content, said", [
    ("", "the file is empty (no header)"),
    ("\ntimestamp,value\n", "no header: line 1 is blank"),
    ("timestamp,value\n60,1\n120\n180,3\n", "line 3: 1 field(s), fewer than the header's 2"),
    ("timestamp,value\n60\n120\n", "line 2: 1 field(s), fewer than the header's 2"),
    ("timestamp,value,comment\n60,1,a\n120,2\n", "line 3: 2 field(s), fewer than the header's 3")])
def test_an_empty_file_and_a_short_row_are_named(tmp_path, capsys, content, said):
    (tmp_path / "in.csv").write_text(content)
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv")]) == 1
    assert said in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_header_names_differing_in_case_are_found(tmp_path, capsys):
    write_series(tmp_path / "plain.csv")
    text = (tmp_path / "plain.csv").read_text().splitlines(keepends=True)
    (tmp_path / "cased.csv").write_text(" Timestamp ,VALUE,comment\n" + "".join(text[1:]))
    assert kades(["score", str(tmp_path / "cased.csv"), "-o", str(tmp_path / "out.csv")]) == 0
    assert kades(["score", str(tmp_path / "plain.csv"), "-o", str(tmp_path / "ref.csv")]) == 0
    out = read(tmp_path / "out.csv")
    assert list(out[0])[:2] == ["Timestamp", "VALUE"]  # the input's names
    assert [r["alert"] for r in out] == [r["alert"] for r in read(tmp_path / "ref.csv")]
    # two names differing only in case: neither is taken for the other
    (tmp_path / "two.csv").write_text("timestamp,Value,VALUE\n" + "".join(
        line.replace(",kept as is", ",1") for line in text[1:]))
    assert kades(["score", str(tmp_path / "two.csv")]) == exitcodes.FAILURE
    assert "missing column(s) 'value'" in capsys.readouterr().err
    # an exact name wins over one differing in case
    (tmp_path / "exact.csv").write_text("timestamp,Value,value\n" + "".join(
        line.replace(",kept as is", ",1") for line in text[1:]))
    assert kades(["score", str(tmp_path / "exact.csv"), "-o", str(tmp_path / "e.csv")]) == 0
    assert {r["Value"] for r in read(tmp_path / "e.csv")} != {"1"}
    assert all(r["anomaly_score"] == "0.000000" for r in read(tmp_path / "e.csv"))


def test_lines_end_as_unix_text_does_not_crlf(tmp_path):
    write_series(tmp_path / "s.csv")
    assert kades(["score", str(tmp_path / "s.csv"), "-o", str(tmp_path / "o.csv")]) == 0
    written = (tmp_path / "o.csv").read_bytes()
    assert b"\r" not in written and written.count(b"\n") == 601
    (tmp_path / "h.csv").write_text("timestamp;value\n")
    assert kades(["score", str(tmp_path / "h.csv"), "-o", str(tmp_path / "o.csv")]) == 0
    assert (tmp_path / "o.csv").read_bytes() == (
        b"timestamp;value;anomaly_score;top_detector;alert\n")


def test_bars_in_which_nothing_traded_are_not_counted_as_scored(tmp_path, capsys):
    """Minute bars that repeat the last close with volume 0 are left out (policy.no_trade),
    and the summary says so instead of calling them scored."""
    lines, price = ["timestamp,value,volume"], 100.0
    for minute in range(300):
        traded = minute % 10 == 0
        price *= 1.001 if traded else 1.0
        lines.append(f"{1704067200 + 60 * minute},{price},{5.0 if traded else 0.0}")
    (tmp_path / "bars.csv").write_text("\n".join(lines) + "\n")
    assert kades(["score", str(tmp_path / "bars.csv"), "--volume-column", "volume",
                  "-o", str(tmp_path / "o.csv")]) == 0
    error = capsys.readouterr().err
    assert "30 rows scored, 270 with volume 0 at the value of the scored row before them" in error
    scores = [line.split(",")[3] for line in (tmp_path / "o.csv").read_text().splitlines()[1:]]
    assert all(float(score) == 0.0 for minute, score in enumerate(scores) if minute % 10)


def test_a_row_at_the_time_of_the_one_before_is_left_out_as_the_function_leaves_it(tmp_path):
    """Such rows went through the policy and were learned (12 % of the pump tapes' trades
    share a millisecond with the one before), where temporal-analysis skips them: an exact
    duplicate row cost the next row its alert."""
    series = write_series(tmp_path / "in.csv")
    lines = (tmp_path / "in.csv").read_text().splitlines(keepends=True)
    doubled = lines[:1] + [line for line in lines[1:] for _ in (0, 1)]  # every row twice
    (tmp_path / "twice.csv").write_text("".join(doubled))
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "once.out")]) == 0
    assert kades(["score", str(tmp_path / "twice.csv"), "-o", str(tmp_path / "twice.out")]) == 0
    once, twice = read(tmp_path / "once.out"), read(tmp_path / "twice.out")
    assert len(twice) == 2 * len(once) == 2 * len(series.values)
    assert [r["anomaly_score"] for r in twice[::2]] == [r["anomaly_score"] for r in once]
    assert all(r["anomaly_score"] == "0.000000" and not r["alert"] for r in twice[1::2])


def test_a_gzipped_csv_is_scored_as_the_csv_it_holds_also_in_a_folder(tmp_path, monkeypatch):
    """The trade tapes ship as .csv.gz: 'not UTF-8 text', and --dir left them out. An output
    folder holding the input folder (--output-dir .) left nothing to score."""
    import gzip
    write_series(tmp_path / "in.csv")
    (tmp_path / "tapes").mkdir()
    (tmp_path / "tapes" / "in.csv.gz").write_bytes(gzip.compress((tmp_path / "in.csv").read_bytes()))
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "plain.out")]) == 0
    assert kades(["score", str(tmp_path / "tapes" / "in.csv.gz"), "-o", str(tmp_path / "gz.out")]) == 0
    assert read(tmp_path / "gz.out") == read(tmp_path / "plain.out")
    monkeypatch.chdir(tmp_path)
    assert kades(["score", "--dir", "tapes", "--output-dir", "."]) == 0
    assert read(tmp_path / "in.csv") == read(tmp_path / "plain.out")  # written back as in.csv


def test_a_gzip_file_cut_short_or_damaged_is_named_and_the_folder_goes_on(tmp_path, capsys):
    """EOFError and zlib.error are no OSError: a traceback, and --dir stopped at the first
    such file, scoring none after it."""
    import gzip
    write_series(tmp_path / "in.csv")
    whole = gzip.compress((tmp_path / "in.csv").read_bytes())
    (tmp_path / "tapes").mkdir()
    (tmp_path / "tapes" / "a_cut.csv.gz").write_bytes(whole[:30])
    damaged = bytearray(whole)
    damaged[len(whole) // 2] ^= 0xFF
    (tmp_path / "tapes" / "b_damaged.csv.gz").write_bytes(bytes(damaged))
    (tmp_path / "tapes" / "c_whole.csv.gz").write_bytes(whole)
    capsys.readouterr()
    assert kades(["score", "--dir", str(tmp_path / "tapes"), "--output-dir", str(tmp_path / "out")]) == 1
    said = capsys.readouterr().err
    assert "a_cut.csv.gz: not a whole gzip file" in said and "Traceback" not in said
    assert "b_damaged.csv.gz: " in said  # named with its error (zlib.error, or a bad CRC)
    assert "1 of 3 files scored" in said and (tmp_path / "out" / "c_whole.csv").exists()


def test_a_scored_file_whose_series_was_picked_is_scored_again(tmp_path):
    """Its added columns were taken for candidates: "'Close', 'anomaly_score', 'top_detector',
    'alert' could each be the series", where the docs say a scored file gets its columns anew."""
    series = simulate_series("noisy", seed=3, points=300, anomalies=1)
    with open(tmp_path / "in.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Date", "Close"])  # one column that can be the series: picked
        writer.writerows([datetime.fromtimestamp(t, timezone.utc).isoformat(), v]
                         for t, v in zip(series.times, series.values))
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "once.csv")]) == 0
    assert kades(["score", str(tmp_path / "once.csv"), "-o", str(tmp_path / "twice.csv")]) == 0
    assert read(tmp_path / "twice.csv") == read(tmp_path / "once.csv")
