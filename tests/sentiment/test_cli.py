"""`kades sentiment`: columns added to every row, clear errors, exit codes."""
from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from kades import exitcodes
from kades.cli import main
from kades.sentiment.cli import InputError, score_csv
from kades.sentiment.model_trained import default_model
from terminal import Terminal


def write(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(rows)


def test_adds_three_columns_and_keeps_the_rest(tmp_path, capsys):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    write(source, [["id", "body"], ["1", "$BONK to the moon 🚀"], ["2", "rugged again, scam"],
                   ["3", ""], ["4", "what is the CA?"]])
    assert main(["sentiment", str(source), "--text-column", "body", "--output", str(target)]) == 0
    rows = list(csv.DictReader(open(target, encoding="utf-8")))
    assert [r["sentiment"] for r in rows] == ["positive", "negative", "neutral", "neutral"]
    assert rows[0]["id"] == "1" and float(rows[0]["compound"]) > 0.5
    assert all(0.5 <= float(r["confidence"]) <= 1 for r in rows)
    assert capsys.readouterr().err == "kades sentiment: scored 4 rows\n"  # no bar off a terminal


def test_semicolons_and_a_byte_order_mark_as_spreadsheets_write_them(tmp_path, capsys):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    with open(source, "w", encoding="utf-8-sig", newline="") as out:  # writes the mark
        csv.writer(out, delimiter=";").writerows([["id", "body"], ["1", "rugged again, scam"],
                                                  ["2", "$BONK to the moon 🚀"]])
    assert main(["sentiment", str(source), "--text-column", "body", "--output", str(target)]) == 0
    rows = list(csv.DictReader(open(target, encoding="utf-8"), delimiter=";"))
    assert [(r["id"], r["sentiment"]) for r in rows] == [("1", "negative"), ("2", "positive")]
    assert capsys.readouterr().err == "kades sentiment: scored 2 rows\n"


def test_plain_vader_on_request(tmp_path, capsys):
    source = tmp_path / "in.csv"
    write(source, [["t"], ["wagmi lfg"]])
    assert main(["sentiment", str(source), "--text-column", "t", "--model", "vader", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "wagmi lfg,neutral,0.0000,1.0000"


def test_each_model_on_request(tmp_path, capsys):
    """crypto (the default) is the function's own model; lexicon and vader by name."""
    from kades.sentiment.model import PlainVader, lexicon_model
    source, text = tmp_path / "in.csv", "not bullish at all on this launch"
    write(source, [["t"], [text]])
    for name, model in (("crypto", default_model()), ("lexicon", lexicon_model()),
                        ("vader", PlainVader())):
        assert main(["sentiment", str(source), "--text-column", "t", "--model", name,
                     "--quiet"]) == 0
        score = model.score(text)
        assert capsys.readouterr().out.splitlines()[1] == (
            f"{text},{score.label},{score.compound:.4f},{score.confidence:.4f}"), name


def test_spaces_around_header_names_and_blank_posts(tmp_path, capsys):
    """"id, body" is a common header; a blank post (image only) says nothing, so every model
    scores it neutral, 0, sure of it (the trained heads' bias leaned negative before)."""
    source = tmp_path / "in.csv"
    source.write_text("id, body \n1,rugged again\n2,\n3,   \n", encoding="utf-8")
    assert main(["sentiment", str(source), "--text-column", "body", "--quiet"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["id", "body", "sentiment", "compound", "confidence"]
    assert rows[0]["sentiment"] == "negative"
    assert [(r["sentiment"], r["compound"], r["confidence"]) for r in rows[1:]] == [
        ("neutral", "0.0000", "1.0000")] * 2


@pytest.mark.parametrize("content, column, message", [
    ("a,b\n1,2\n", "text", "no column 'text'; the columns are: a, b"),
    ("", "text", "the input is empty"),
    ("text,sentiment\nx,y\n", "text", "already has column(s) sentiment"),
    ("id,text\n1,good\n2,bad,extra\n", "text", "line 3: 1 field(s) more than the header's 2"),
])
def test_clear_errors(tmp_path, capsys, content, column, message):
    source = tmp_path / "in.csv"
    source.write_text(content, encoding="utf-8")
    assert main(["sentiment", str(source), "--text-column", column, "--quiet"]) == 1
    assert message in capsys.readouterr().err


def test_missing_file_and_bad_encoding(tmp_path, capsys):
    assert main(["sentiment", str(tmp_path / "nope.csv"), "--text-column", "t"]) == 1
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "latin.csv").write_bytes(b"t\ncaf\xe9\n")
    assert main(["sentiment", str(tmp_path / "latin.csv"), "--text-column", "t"]) == 1
    assert "not UTF-8" in capsys.readouterr().err


def test_overwrite_replaces_existing_columns():
    target = io.StringIO()
    score_csv(io.StringIO("text,sentiment\nrekt,old\n"), target, text_column="text",
              model=default_model(), overwrite=True)
    assert target.getvalue().splitlines()[0] == "text,sentiment,compound,confidence"
    assert target.getvalue().splitlines()[1].startswith("rekt,negative,")
    with pytest.raises(InputError):
        score_csv(io.StringIO("x\n1\n"), io.StringIO(), text_column="text", model=default_model())


def test_dash_reads_stdin_and_writes_stdout(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("id,body\n1,to the moon\n2,rug pull scam\n"))
    assert main(["sentiment", "-", "--text-column", "body", "--output", "-"]) == exitcodes.OK
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["id"], r["sentiment"]) for r in rows] == [("1", "positive"), ("2", "negative")]


@pytest.mark.slow
def test_a_redirected_stderr_gets_no_progress_frames(tmp_path):
    source = tmp_path / "in.csv"
    write(source, [["body"], *[[f"gm {n}, wagmi"] for n in range(300)]])
    run = subprocess.run([sys.executable, "-m", "kades.cli", "sentiment", str(source),
                          "--text-column", "body", "--output", str(tmp_path / "out.csv")],
                         capture_output=True, timeout=120)  # bytes: text mode hides `\r`
    assert run.returncode == exitcodes.OK, run.stderr
    assert b"\r" not in run.stderr and run.stderr == b"kades sentiment: scored 300 rows\n"


def test_a_terminal_gets_a_progress_bar_unless_quiet(tmp_path, monkeypatch):
    source = tmp_path / "in.csv"
    write(source, [["body"], *[[f"gm {n}"] for n in range(40)]])
    for options, drawn in (([], True), (["--quiet"], False)):
        terminal = Terminal()
        monkeypatch.setattr("sys.stderr", terminal)
        assert main(["sentiment", str(source), "--text-column", "body",
                     "--output", str(tmp_path / "out.csv"), *options]) == exitcodes.OK
        assert ("\r" in terminal.getvalue() and "40/40" in terminal.getvalue()) == drawn


def test_the_output_is_written_only_when_the_whole_input_is_scored(tmp_path, capsys):
    """It was opened first: a wrong column emptied an existing output, and the input as its own
    output was emptied before it was read."""
    source, earlier = tmp_path / "in.csv", tmp_path / "earlier.csv"
    source.write_text("id,text\n1,good\n2,bad\n", encoding="utf-8")
    earlier.write_text("kept\n", encoding="utf-8")
    assert main(["sentiment", str(source), "--text-column", "nope", "--output", str(earlier),
                 "--quiet"]) == 1
    assert earlier.read_text() == "kept\n"
    assert main(["sentiment", str(source), "--text-column", "text", "--output", str(source),
                 "--quiet"]) == 0
    rows = list(csv.DictReader(source.open(encoding="utf-8")))
    assert [r["text"] for r in rows] == ["good", "bad"] and all(r["sentiment"] for r in rows)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["earlier.csv", "in.csv"]


def test_a_gzipped_export_is_scored(tmp_path, capsys):
    """Real exports ship as .csv.gz: the scoring read them, the row count before it (for the
    bar) opened them as text, and the command ended 'is not UTF-8 text'."""
    import gzip
    source, target = tmp_path / "posts.csv.gz", tmp_path / "out.csv"
    with gzip.open(source, "wt", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([["text"], ["$BONK to the moon 🚀"], ["rugged again"]])
    assert main(["sentiment", str(source), "--text-column", "text",
                 "--output", str(target)]) == 0
    rows = list(csv.DictReader(open(target, encoding="utf-8")))
    assert [r["sentiment"] for r in rows] == ["positive", "negative"]
    assert capsys.readouterr().err == "kades sentiment: scored 2 rows\n"


@pytest.mark.parametrize("damage", ["cut short", "a byte flipped"])
def test_a_damaged_gzip_export_is_one_line_not_a_traceback(tmp_path, capsys, damage):
    """A .gz cut short raised EOFError and a damaged one zlib.error, neither an OSError."""
    import gzip
    whole = gzip.compress(b"text\n" + b"gm frens\n" * 1000)
    content = whole[:len(whole) // 2] if damage == "cut short" else \
        whole[:12] + bytes([whole[12] ^ 0xFF]) + whole[13:]
    source = tmp_path / "posts.csv.gz"
    source.write_bytes(content)
    assert main(["sentiment", str(source), "--text-column", "text", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "not a whole gzip file" in err and str(source) in err and "Traceback" not in err


def test_a_field_past_the_csv_limit_is_named_with_its_file_and_line(tmp_path, capsys):
    source = tmp_path / "posts.csv"
    source.write_text("text\nfine\n\"" + "a" * 200_000 + "\"\n", encoding="utf-8")
    assert main(["sentiment", str(source), "--text-column", "text", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"kades sentiment: {source}: line 3: not a CSV this can read"), err
