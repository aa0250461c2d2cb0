"""Corpus jobs (xlmr_np/embeddings/corpus.py): formats, errors, input order, resuming after a kill, workers."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xlmr_np.embeddings import SentenceTransformer
from xlmr_np.embeddings.corpus import CorpusError, embed_corpus, read_texts

ROOT = Path(__file__).resolve().parent.parent
E5 = ROOT / "reference_outputs" / "embeddings" / "st_e5"
M3 = ROOT / "reference_outputs" / "embeddings" / "bge_m3"
WORDS = "the city council met on monday to discuss les enfants jouaient dans le parc und die Eltern".split()


def corpus(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 30)))) for _ in range(n)]


def write(path, texts, kind):
    if kind == "txt":
        path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    elif kind == "jsonl":
        path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    elif kind == "csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "text"])
            writer.writerows(enumerate(texts))
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq
        pq.write_table(pa.table({"text": texts}), path)
    return path


@pytest.mark.parametrize("kind", ["txt", "jsonl", "csv", "parquet"])
def test_every_format_reads_the_same_texts(tmp_path, kind):
    texts = corpus(5) + ['a "quoted", comma line']
    got, lines = read_texts(write(tmp_path / f"in.{kind}", texts, kind))
    assert got == texts and len(lines) == len(texts)


def test_output_is_in_input_order_and_equals_encode(tmp_path):
    texts = corpus(30)
    source = write(tmp_path / "in.txt", texts, "txt")
    report = embed_corpus(E5, source, tmp_path / "out.npy", chunk_size=7, batch_size=4)
    got = np.load(tmp_path / "out.npy")
    want = SentenceTransformer(E5).encode(texts, batch_size=4)
    assert got.shape == (30, 16) and report.rows == 30 and report.chunks == 5
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not (tmp_path / "out.npy.parts").exists()


def test_jsonl_output_with_bge_m3_lexical_weights(tmp_path):
    texts = corpus(6)
    source = write(tmp_path / "in.jsonl", texts, "jsonl")
    report = embed_corpus(M3, source, tmp_path / "out.jsonl", chunk_size=4,
                          encode_options={"return_sparse": True})
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert report.kind == "bge-m3" and [r["index"] for r in rows] == list(range(6))
    from xlmr_np.embeddings import BGEM3
    want = BGEM3(M3).encode(texts, return_sparse=True)
    np.testing.assert_allclose([r["embedding"] for r in rows], want["dense_vecs"], atol=1e-6)
    assert [set(r["lexical_weights"]) for r in rows] == [set(w) for w in want["lexical_weights"]]


def test_clear_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"body": "b"}\n')
    with pytest.raises(CorpusError, match=r"bad.jsonl:2: no field 'text' \(found \['body'\]\)"):
        embed_corpus(E5, bad, tmp_path / "o.npy")
    bad.write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(CorpusError, match="bad.jsonl:2: not JSON"):
        read_texts(bad)
    empty = tmp_path / "e.txt"
    empty.write_text("one\n\nthree\n")
    with pytest.raises(CorpusError, match="e.txt:2: empty text"):
        read_texts(empty)
    assert read_texts(empty, empty="keep")[0] == ["one", "", "three"]
    table = write(tmp_path / "t.csv", ["x"], "csv")
    with pytest.raises(CorpusError, match="no column 'body' in the header"):
        read_texts(table, field="body")
    with pytest.raises(CorpusError, match="unknown output format"):
        embed_corpus(E5, table, tmp_path / "o.parquet")


def test_too_long_lines_are_truncated_and_counted_or_refused(tmp_path):
    texts = ["short", " ".join(["word"] * 40), "also short", " ".join(["mot"] * 50)]
    source = write(tmp_path / "in.txt", texts, "txt")
    report = embed_corpus(E5, source, tmp_path / "out.npy", chunk_size=2)  # st_e5: max_seq_length 24
    assert report.truncated == 2
    with pytest.raises(CorpusError, match=r"in.txt: line 2: 42 tokens, more than the limit of 24"):
        embed_corpus(E5, source, tmp_path / "out2.npy", on_too_long="error", chunk_size=1)


def test_other_arguments_do_not_continue_a_job(tmp_path):
    source = write(tmp_path / "in.txt", corpus(4), "txt")
    (tmp_path / "out.npy.parts").mkdir()
    (tmp_path / "out.npy.parts" / "job.json").write_text(json.dumps({"rows": 99}))
    with pytest.raises(CorpusError, match="holds the parts of another job"):
        embed_corpus(E5, source, tmp_path / "out.npy")
    assert embed_corpus(E5, source, tmp_path / "out.npy", restart=True).rows == 4


KILLED_RUN = """
import sys, time
sys.path.insert(0, {root!r})
from xlmr_np.embeddings.corpus import embed_corpus
embed_corpus({model!r}, {source!r}, {output!r}, chunk_size=3, batch_size=2,
             progress=lambda done, total: time.sleep(0.4 if done else 0))
"""


def test_a_killed_job_continues_and_ends_with_identical_output(tmp_path):
    texts = corpus(30, seed=3)
    source = write(tmp_path / "in.txt", texts, "txt")
    whole = embed_corpus(E5, source, tmp_path / "whole.npy", chunk_size=3, batch_size=2)
    assert whole.chunks_computed == 10
    output = tmp_path / "resumed.npy"
    script = KILLED_RUN.format(root=str(ROOT), model=str(E5), source=str(source), output=str(output))
    child = subprocess.Popen([sys.executable, "-c", script])
    parts = tmp_path / "resumed.npy.parts"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("chunk-*.npy"))) < 2:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    finished = len(list(parts.glob("chunk-*.npy")))
    assert 2 <= finished < 10 and not output.exists()
    report = embed_corpus(E5, source, output, chunk_size=3, batch_size=2)
    assert report.chunks_reused == finished and report.chunks_computed == 10 - finished
    assert output.read_bytes() == (tmp_path / "whole.npy").read_bytes()


def test_workers_give_the_same_output(tmp_path):
    texts = corpus(24, seed=5)
    source = write(tmp_path / "in.txt", texts, "txt")
    one = embed_corpus(E5, source, tmp_path / "one.npy", chunk_size=4)
    two = embed_corpus(E5, source, tmp_path / "two.npy", chunk_size=4, workers=2)
    assert one.workers == 1 and two.workers == 2
    assert (tmp_path / "two.npy").read_bytes() == (tmp_path / "one.npy").read_bytes()


def test_the_command_options_run_a_job(tmp_path, capsys):
    import argparse

    from xlmr_np.embeddings.command import add_corpus_arguments, run_corpus

    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None)
    add_corpus_arguments(parser)
    source = write(tmp_path / "in.jsonl", corpus(5), "jsonl")
    args = parser.parse_args(["--input", str(source), "--output", str(tmp_path / "o.npy"), "--prompt-name", "query",
                              "--normalize", "--chunk-size", "2"])
    assert run_corpus(args, E5) == 0
    assert "5 inputs ->" in capsys.readouterr().err
    want = SentenceTransformer(E5).encode(corpus(5), prompt_name="query", normalize_embeddings=True)
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), want, atol=1e-6)
