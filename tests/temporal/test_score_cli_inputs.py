"""`kades score` on files as public labelled corpora and exports write them: columns named
otherwise than timestamp,value, a label column beside the series, no header, blank rows."""
from __future__ import annotations

import csv
from datetime import datetime, timezone

import pytest

from kades import exitcodes
from kades.cli import main as kades
from kades.simulate.series import simulate_series


def write_table(path, header, *, sep=",", label=True, extra=()):
    """The seeded noisy series under `header` (time column first, then the value, then a 0/1
    label when `label`, then `extra` constant columns), a time every minute in ISO 8601."""
    series = simulate_series("noisy", seed=1, points=600, anomalies=2)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out, delimiter=sep)
        writer.writerow(header)
        for t, v in zip(series.times, series.values):
            labelled = any(l["start"] <= t <= l["end"] for l in series.labels)
            moment = datetime.fromtimestamp(t, timezone.utc).isoformat()
            writer.writerow([moment, v, *([int(labelled)] if label else []), *extra])


def scored(path, *options) -> list[tuple[str, str]]:
    out = path.with_suffix(".out.csv")
    assert kades(["score", str(path), "-o", str(out), *options]) == exitcodes.OK
    with open(out, newline="") as handle:
        return [(row["anomaly_score"], row["alert"]) for row in csv.DictReader(handle)]


@pytest.fixture
def reference(tmp_path):
    write_table(tmp_path / "ref.csv", ["timestamp", "value", "is_anomaly"])
    rows = scored(tmp_path / "ref.csv")
    assert any(alert for _, alert in rows)  # the series' changes: not all zeros
    return rows


@pytest.mark.parametrize("header, said", [
    (["time", "value", "label"], "times read from 'time'"),
    (["timestamps", "value", "anomaly"], "times read from 'timestamps'"),  # Yahoo S5 A3/A4
    (["Date", "Close", "is_anomaly"], "scoring 'Close'"),
    (["datetime", "Value", "changepoint"], "times read from 'datetime'"),  # SKAB
    (["ts", "y", "label"], "scoring 'y'"),
    (["timestamp", "count", "is_anomaly"], "scoring 'count'")])  # Twitter's AnomalyDetection
def test_a_corpus_naming_its_columns_otherwise_is_scored_and_says_which_it_read(
        tmp_path, capsys, reference, header, said):
    """A file without `timestamp` or `value` columns was refused ("missing column(s)"):
    the one column named as times are (time, date, datetime, ts, ...) is its times, and the
    one column left beside them and the labels is its series; stderr says which."""
    write_table(tmp_path / "in.csv", header)
    assert scored(tmp_path / "in.csv") == reference
    assert said in capsys.readouterr().err


def test_a_label_column_is_never_taken_for_the_series(tmp_path, capsys):
    """Only labels beside the times: nothing to score, and no label scored as the series."""
    (tmp_path / "in.csv").write_text("time,is_anomaly,changepoint\n60,0,0\n120,1,0\n")
    assert kades(["score", str(tmp_path / "in.csv")]) == exitcodes.FAILURE
    assert "missing column(s) 'value'" in capsys.readouterr().err


def test_several_columns_that_could_be_the_series_are_named_with_the_option_to_choose(
        tmp_path, capsys, reference):
    write_table(tmp_path / "in.csv", ["datetime", "Current", "anomaly", "Pressure"], sep=";",
                extra=[1.5])
    assert kades(["score", str(tmp_path / "in.csv")]) == exitcodes.FAILURE
    error = capsys.readouterr().err
    assert "'Current', 'Pressure'" in error and "--value-column" in error
    assert "'anomaly'" not in error.split("could be")[-1]
    # named, it is scored, the times still found by their name
    out = tmp_path / "out.csv"
    assert kades(["score", str(tmp_path / "in.csv"), "--value-column", "Current",
                  "-o", str(out)]) == exitcodes.OK
    with open(out, newline="") as handle:
        rows = [(r["anomaly_score"], r["alert"]) for r in csv.DictReader(handle, delimiter=";")]
    assert rows == reference


def test_two_columns_named_as_times_are_not_guessed_between(tmp_path, capsys):
    (tmp_path / "in.csv").write_text("Date,Time,value\n2024-01-01,00:00,1\n")
    assert kades(["score", str(tmp_path / "in.csv")]) == exitcodes.FAILURE
    error = capsys.readouterr().err
    assert "'Date', 'Time'" in error and "--timestamp-column" in error


def test_a_named_column_is_not_replaced_by_a_guess(tmp_path, capsys):
    write_table(tmp_path / "in.csv", ["time", "price", "label"])
    assert kades(["score", str(tmp_path / "in.csv"), "--timestamp-column", "when",
                  "--value-column", "close"]) == exitcodes.FAILURE
    assert "missing column(s) 'when', 'close'" in capsys.readouterr().err
    # a named time column missing is said, not hidden behind a guess at the series
    assert kades(["score", str(tmp_path / "in.csv"), "--timestamp-column", "when"]) == 1
    assert "missing column(s) 'when', 'value'" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["1.5\n2.5\n3.5\n",
                                     "2024-01-01 00:00:00,1.5\n2024-01-01 00:01:00,2.5\n"])
def test_a_file_without_a_header_is_named_so(tmp_path, capsys, content):
    """UCR's and TSB-UAD's files hold values from line 1: the error said "missing column(s)
    'timestamp', 'value'; the header has '1.5'", as if 1.5 were a column's name."""
    (tmp_path / "in.csv").write_text(content)
    assert kades(["score", str(tmp_path / "in.csv")]) == exitcodes.FAILURE
    error = capsys.readouterr().err
    assert "no header" in error and "line 1 holds" in error and "missing" not in error


@pytest.mark.parametrize("blank, rows", [(",,\n", [",,,,,"]), (",,\n,,\n", [",,,,,"] * 2),
                                         ("   \n", ["   ,,,,,"]), (";\n", [";;;;;"]),
                                         (",,,,\n", [",,,,,"])])
def test_lines_of_separators_or_spaces_only_come_back_as_rows_without_a_value(
        tmp_path, capsys, blank, rows):
    """A spreadsheet's export ends in rows of empty cells (",,"), a hand-edited file in a
    line of spaces: the file was refused ("timestamp '' unparsable", "fewer fields"). They
    come back unscored, the other rows scored as without them, the rows as many as in."""
    write_table(tmp_path / "ref.csv", ["timestamp", "value", "label"])
    text = (tmp_path / "ref.csv").read_text()
    if blank.startswith(";"):
        text, blank = text.replace(",", ";"), blank.replace(";", ";;")
    (tmp_path / "in.csv").write_text(text + blank)
    out = tmp_path / "out.csv"
    assert kades(["score", str(tmp_path / "in.csv"), "-o", str(out)]) == exitcodes.OK
    assert f"{len(rows)} without a value written back unscored" in capsys.readouterr().err
    assert kades(["score", str(tmp_path / "ref.csv"), "-o", str(tmp_path / "r.csv")]) == 0
    assert out.read_text() == (tmp_path / "r.csv").read_text().replace(
        ",", ";" if blank.startswith(";") else ",") + "".join(row + "\n" for row in rows)
    # in a file out of time order too (scored in time order, written back in file order)
    lines = text.splitlines(keepends=True)
    (tmp_path / "shuffled.csv").write_text("".join([lines[0], blank, *lines[:0:-1]]))
    assert kades(["score", str(tmp_path / "shuffled.csv"), "-o", str(out)]) == exitcodes.OK
    assert out.read_text().splitlines()[1:1 + len(rows)] == rows


def test_a_folder_of_csvs_named_in_capitals_is_scored(tmp_path):
    """*.CSV (as Windows tools name files) was left out of --dir without a word."""
    (tmp_path / "in" / "sub").mkdir(parents=True)
    write_table(tmp_path / "in" / "a.csv", ["timestamp", "value"], label=False)
    write_table(tmp_path / "in" / "sub" / "B.CSV", ["timestamp", "value"], label=False)
    (tmp_path / "in" / "notes.txt").write_text("not a series\n")
    assert kades(["score", "--dir", str(tmp_path / "in"),
                  "--output-dir", str(tmp_path / "out")]) == exitcodes.OK
    assert sorted(p.relative_to(tmp_path / "out").as_posix()
                  for p in (tmp_path / "out").rglob("*") if p.is_file()) == ["a.csv", "sub/B.CSV"]
