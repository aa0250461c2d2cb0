"""The task commands of `python -m xlmr_np` (xlmr_np/cli/pipelines.py, cli/tokenize.py): results, formats, stdin,
exit codes.

Results are checked against the Hugging Face pipeline goldens (reference_outputs/pipelines/goldens.json): the
command's JSON result for a golden's input must equal HF's result for it. Most runs are in-process through
cli.main (fast); one runs `python -m xlmr_np` as a subprocess to check the real entry point.
"""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_pipelines import assert_same
from xlmr_np import cli

ROOT = Path(__file__).resolve().parent.parent
GOLDENS = ROOT / "reference_outputs" / "pipelines"
TOKENIZER = ["--tokenizer", str(ROOT / "reference_outputs" / "tokenizer")]
RECORDS = {r["name"]: r for r in json.loads((GOLDENS / "goldens.json").read_text(encoding="utf-8"))}


def main(capsys, monkeypatch, *argv, stdin=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def model(name):
    return ["--model", str(GOLDENS / name), *TOKENIZER]


def jsonl(out):
    return [json.loads(line) for line in out.splitlines()]


def test_fill_mask_jsonl_matches_hf(capsys, monkeypatch):
    single, batch = RECORDS["fill_mask_single"], RECORDS["fill_mask_batch"]
    code, out, err = main(capsys, monkeypatch, "fill-mask", *model("masked_lm"), "--format", "jsonl", *batch["args"][0])
    assert code == 0, err
    records = jsonl(out)
    assert [r["input"] for r in records] == batch["args"][0]
    assert_same([r["result"] for r in records], batch["expected"])
    assert_same(records[0]["result"], single["expected"])


def test_fill_mask_reads_stdin_and_skips_blank_lines(capsys, monkeypatch):
    record = RECORDS["fill_mask_top_k"]
    text = record["args"][0]
    code, out, err = main(capsys, monkeypatch, "fill-mask", *model("masked_lm"), "--top-k", "12", "--format", "json",
                          stdin=f"{text}\n\n")
    assert code == 0, err
    (only,) = json.loads(out)
    assert_same(only["result"], record["expected"])


def test_one_bad_line_fails_alone_with_status_1(capsys, monkeypatch):
    good = RECORDS["fill_mask_single"]
    code, out, err = main(capsys, monkeypatch, "fill-mask", *model("masked_lm"), "--format", "jsonl",
                          good["args"][0], "no mask in this one")
    assert code == 1
    first, second = jsonl(out)
    assert_same(first["result"], good["expected"])
    assert "No mask_token" in second["error"]
    assert err.startswith("xlmr-np: error: input 2: No mask_token")


def test_classify_pairs_and_all_labels(capsys, monkeypatch):
    pairs = RECORDS["classify_pairs"]
    lines = "".join(f"{p['text']}\t{p['text_pair']}\n" for p in pairs["args"][0])
    code, out, err = main(capsys, monkeypatch, "classify", "--pairs", *model("scorer"), "--format", "jsonl",
                          stdin=lines)
    assert code == 0, err
    assert_same([r["result"] for r in jsonl(out)], pairs["expected"])
    every = RECORDS["classify_top_k_none"]
    code, out, err = main(capsys, monkeypatch, "classify", *model("classifier"), "--top-k", "0", "--format", "jsonl",
                          every["args"][0])
    assert_same(jsonl(out)[0]["result"], every["expected"])


def test_ner_qa_zero_shot_match_hf(capsys, monkeypatch):
    ner = RECORDS["ner_first"]
    code, out, err = main(capsys, monkeypatch, "ner", *model("ner"), "--aggregation-strategy", "first",
                          "--format", "jsonl", *ner["args"][0])
    assert code == 0, err
    assert_same([r["result"] for r in jsonl(out)], ner["expected"])
    assert "fallback heuristic" in err  # HF's warning, passed on once

    qa = RECORDS["qa_batch"]["kwargs"]
    code, out, err = main(capsys, monkeypatch, "qa", *model("qa"), "--context", qa["context"], "--top-k", "2",
                          "--format", "jsonl", *qa["question"])
    assert code == 0, err
    assert_same([r["result"] for r in jsonl(out)], RECORDS["qa_batch"]["expected"])

    zs = RECORDS["zero_shot_multi_label"]
    labels = ",".join(zs["kwargs"]["candidate_labels"])
    code, out, err = main(capsys, monkeypatch, "zero-shot", *model("nli"), "--labels", labels, "--multi-label",
                          "--format", "jsonl", zs["args"][0])
    assert code == 0, err
    assert_same(jsonl(out)[0]["result"], zs["expected"])


def test_qa_tab_separated_stdin(capsys, monkeypatch):
    qa = RECORDS["qa_single"]["kwargs"]
    code, out, err = main(capsys, monkeypatch, "qa", *model("qa"), "--format", "jsonl",
                          stdin=f"{qa['question']}\t{qa['context']}\n")
    assert code == 0, err
    assert_same(jsonl(out)[0]["result"], RECORDS["qa_single"]["expected"])


def test_embed_reads_the_folder_pooling(capsys, monkeypatch):
    record = RECORDS["embed_folder_st_cls_normalized"]
    code, out, err = main(capsys, monkeypatch, "embed", *model("st_cls_normalized"), "--format", "jsonl",
                          *record["args"][0])
    assert code == 0, err
    assert_same([r["result"] for r in jsonl(out)], record["expected"])


def test_tokenize_table(capsys, monkeypatch):
    transformers = pytest.importorskip("transformers")
    hf = transformers.XLMRobertaTokenizer.from_pretrained(TOKENIZER[1])
    code, out, err = main(capsys, monkeypatch, "tokenize", *model("qa"), "--format", "table", "Hello world")
    assert code == 0, err
    for token, index in zip(hf.tokenize("Hello world"), hf("Hello world")["input_ids"][1:]):
        assert f"{index}" in out and repr(token) in out


@pytest.mark.parametrize("argv,message", [
    (["zero-shot", "--labels", "a,b", "text"], "entail"),
    (["ner", "text"], "needs a token-classification head"),
    (["fill-mask", "--top-k", "0", "a <mask>"], "--top-k must be at least 1"),
])
def test_usage_errors_exit_2(capsys, monkeypatch, argv, message):
    models = {"zero-shot": "classifier", "ner": "masked_lm", "fill-mask": "masked_lm", "qa": "qa"}
    code, out, err = main(capsys, monkeypatch, argv[0], *model(models[argv[0]]), *argv[1:])
    assert code == 2 and out == ""
    assert err.startswith("xlmr-np: error:") and message in err


def test_a_line_without_its_tab_fails_alone(capsys, monkeypatch):
    # read as a stream, a line cannot stop the lines before it: it gets its error record, the others their answers
    qa = RECORDS["qa_single"]["kwargs"]
    code, out, err = main(capsys, monkeypatch, "qa", *model("qa"), "--format", "jsonl",
                          stdin=f"no tab here\n{qa['question']}\t{qa['context']}\n")
    assert code == 1
    bad, good = jsonl(out)
    assert bad == {"input": "no tab here", "error": bad["error"]} and "question<TAB>context" in bad["error"]
    assert_same(good["result"], RECORDS["qa_single"]["expected"])
    assert err.startswith("xlmr-np: error: input 1: no tab: without --context") and len(err.splitlines()) == 1


def test_no_input_is_a_usage_error(capsys, monkeypatch):
    code, out, err = main(capsys, monkeypatch, "fill-mask", *model("masked_lm"), stdin="")
    assert code == 2 and "no input" in err


def test_entry_point_runs_as_a_module():
    record = RECORDS["classify_legacy"]
    result = subprocess.run([sys.executable, "-m", "xlmr_np", "classify", *model("classifier"), record["args"][0]],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()  # not a terminal: jsonl by default
    assert_same(json.loads(line)["result"], record["expected"])  # top_k=1: [{"label", "score"}]


DEMO = ROOT / "models" / "xlmr-demo"


@pytest.mark.skipif(not (DEMO / "config.json").is_file(), reason="the shipped demo model (models/xlmr-demo) is absent")
def test_default_model_serves_fill_mask_embed_tokenize(capsys, monkeypatch):
    """Without --model the demo checkpoint is used; fill-mask on it equals HF's pipeline on the same files."""
    transformers = pytest.importorskip("transformers")
    text = "Paris is the <mask> of France."
    code, out, err = main(capsys, monkeypatch, "fill-mask", "--format", "jsonl", text)
    assert code == 0, err
    torch = pytest.importorskip("torch")
    # the demo checkpoint is stored in float16; xlmr_np upcasts it to float32 (DESIGN.md), so HF must too
    hf_model = transformers.XLMRobertaForMaskedLM.from_pretrained(DEMO, dtype=torch.float32).eval()
    hf = transformers.pipeline("fill-mask", model=hf_model,
                               tokenizer=transformers.XLMRobertaTokenizer.from_pretrained(DEMO))
    assert_same(jsonl(out)[0]["result"], json.loads(json.dumps(hf(text))))
    for command in ("embed", "tokenize"):
        code, out, err = main(capsys, monkeypatch, command, "--format", "jsonl", "Hello world")
        assert code == 0, err
    code, out, err = main(capsys, monkeypatch, "classify", "Das ist ein ganz normaler deutscher Satz.")
    assert code == 0 and '"label": "de"' in out, err  # the shipped language identifier
    code, out, err = main(capsys, monkeypatch, "ner", "Hello world")
    assert code == 2 and "pass --model DIR" in err and "reference_outputs/pipelines/ner" in err


# --- text that is not UTF-8, and inputs that fail alone ------------------------------------------------------------
class BinaryStdin(io.TextIOWrapper):
    """Standard input as a UTF-8 locale gives it: bytes underneath (.buffer), surrogate escapes on top."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data), encoding="utf-8", errors="surrogateescape")

    def isatty(self):
        return False


def test_text_that_is_not_utf8_fails_alone_and_names_its_line(capsys, monkeypatch):
    good = RECORDS["fill_mask_single"]
    monkeypatch.setattr(sys, "stdin", BinaryStdin(b"caf\xe9 <mask>\n\n" + good["args"][0].encode() + b"\n"))
    code = cli.main(["fill-mask", *model("masked_lm"), "--format", "jsonl"])
    out, err = capsys.readouterr()
    assert code == 1
    bad, answered = jsonl(out)
    assert "line 1 of standard input is not valid UTF-8: byte 4 is 0xe9" in bad["error"]
    assert_same(answered["result"], good["expected"])
    (line,) = err.splitlines()  # one line for the bad input, nothing for the good one
    assert line.startswith("xlmr-np: error: input 1: line 1 of standard input is not valid UTF-8")
    assert "--encoding-errors replace" in line

    monkeypatch.setattr(sys, "stdin", BinaryStdin(b"caf\xe9 <mask>\n"))
    code = cli.main(["fill-mask", *model("masked_lm"), "--format", "jsonl", "--encoding-errors", "replace"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert jsonl(out)[0]["input"] == "caf\ufffd <mask>"


def test_arguments_that_are_not_text_fail_alone(capsys, monkeypatch):
    # "caf\udce9": the byte 0xe9 of an argument as Python decodes argv; "\ud800": a lone surrogate
    code, out, err = main(capsys, monkeypatch, "fill-mask", *model("masked_lm"), "--format", "jsonl",
                          "caf\udce9 <mask>", "\ud800 <mask>", "A <mask>.")
    assert code == 1
    first, second, third = jsonl(out)
    assert "argument 1 is not valid UTF-8" in first["error"] and "argument 2 is not valid UTF-8" in second["error"]
    assert "result" in third
    assert [line.split(":")[2] for line in err.splitlines()] == [" input 1", " input 2"]


def test_a_template_without_a_plain_placeholder_is_one_error_line(capsys, monkeypatch):
    for template, words in (("{x}", "names a field {x}"), ("{} {}", "more than one {}"), ("{", "not a format")):
        code, out, err = main(capsys, monkeypatch, "zero-shot", *model("nli"), "--labels", "a,b",
                              "--hypothesis-template", template, "Some text.")
        assert code == 2 and out == "", err
        (line,) = err.splitlines()
        assert line.startswith("xlmr-np: error: --hypothesis-template") and words in line


def test_model_files_of_the_wrong_shape_are_named(capsys, monkeypatch, tmp_path):
    import shutil

    folder = tmp_path / "st"
    shutil.copytree(GOLDENS / "st_cls_normalized", folder)
    (folder / "modules.json").write_text('{"0": {"type": "sentence_transformers.models.Pooling"}}')
    code, out, err = main(capsys, monkeypatch, "embed", "--model", str(folder), *TOKENIZER, "Some text.")
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"xlmr-np: error: {folder / 'modules.json'}: expected a list of modules")

    (folder / "modules.json").unlink()
    config = json.loads((folder / "config.json").read_text())
    text = json.dumps(config)[:-1] + ', "deep": ' + "[" * 50_000 + "]" * 50_000 + "}"
    (folder / "config.json").write_text(text)
    code, out, err = main(capsys, monkeypatch, "embed", "--model", str(folder), *TOKENIZER, "Some text.")
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"xlmr-np: error: {folder / 'config.json'}: JSON nested too deeply")


def test_a_mask_cut_off_by_truncation_says_so_and_warnings_count_from_1(capsys, monkeypatch):
    code, out, err = main(capsys, monkeypatch, "fill-mask", *model("masked_lm"), "--format", "jsonl",
                          "A <mask>.", "word " * 600 + "<mask>.")
    assert code == 1
    assert "beyond the model's limit of 512 tokens" in jsonl(out)[1]["error"]
    assert "xlmr-np: error: input 2: the <mask> of the input" in err and "No mask_token" not in err

    code, out, err = main(capsys, monkeypatch, "classify", *model("classifier"), "--format", "jsonl",
                          "Short.", "word " * 700)
    assert code == 0
    (line,) = err.splitlines()
    assert line.startswith("xlmr-np: warning: input 2 of ") and "truncated" in line  # HF numbering: input 1


def test_targets_take_one_value_and_leave_the_text_alone(capsys, monkeypatch):
    code, out, err = main(capsys, monkeypatch, "fill-mask", *model("masked_lm"), "--format", "jsonl",
                          "--targets", "▁Paris", "The <mask> is nice.", stdin="")
    assert code == 0, err
    (record,) = jsonl(out)
    assert record["input"] == "The <mask> is nice." and len(record["result"]) == 1
    code, out, err = main(capsys, monkeypatch, "fill-mask", *model("masked_lm"), "--format", "jsonl",
                          "--targets", "▁Paris,▁Rome", "--targets", "▁Berlin", "The <mask> is nice.", stdin="")
    assert code == 0, err
    assert len(jsonl(out)[0]["result"]) == 3
    helptext = cli.build_parser()._subparsers._group_actions[0].choices["fill-mask"].format_help()
    assert "comma-separated" in helptext and "repeat" in helptext


# --- streaming -----------------------------------------------------------------------------------------------------
class InterruptedStdin(io.StringIO):
    """Lines, then Ctrl-C while the next one is awaited."""

    def __iter__(self):
        yield from iter(self.readline, "")
        raise KeyboardInterrupt


def test_ctrl_c_keeps_what_was_written_and_exits_130(capsys, monkeypatch):
    text = RECORDS["fill_mask_single"]["args"][0]
    monkeypatch.setattr(sys, "stdin", InterruptedStdin(f"{text}\n{text}\n"))
    try:
        code = cli.main(["fill-mask", *model("masked_lm"), "--format", "json", "--batch-size", "1"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main() as a traceback")
    out, err = capsys.readouterr()
    assert code == 130
    assert len(json.loads(out)) == 2  # the json list is closed: a valid document of the inputs answered
    assert err == "xlmr-np: error: interrupted; the results of the first 2 input(s) were written\n"


def test_json_output_is_written_as_one_document_element_by_element(capsys, monkeypatch):
    texts = ["A <mask>.", "no mask", "B <mask>."]
    code, out, err = main(capsys, monkeypatch, "fill-mask", *model("masked_lm"), "--format", "json",
                          "--batch-size", "1", *texts)
    assert code == 1
    records = json.loads(out)
    assert [r["input"] for r in records] == texts
    assert out == json.dumps(records, ensure_ascii=False, indent=1) + "\n"  # the layout of one json.dumps


def test_progress_shows_count_rate_and_time_left():
    from xlmr_np.cli.common import Progress

    now = [0.0]
    stream = io.StringIO()
    bar = Progress(total=2000, stream=stream, clock=lambda: now[0])
    now[0] = 0.5
    bar.update(8)
    assert bar.line(8).split() == ["[........................]", "8/2000", "16.0/s", "2:04", "left"]
    assert stream.getvalue() == "\r" + bar.line(8)
    now[0] = 0.0
    from_file, from_pipe = Progress(size=1000, clock=lambda: now[0]), Progress(clock=lambda: now[0])
    now[0] = 1.0
    assert from_file.line(5, 250).split() == ["[######..................]", "5", "inputs,", "25%", "5.0/s", "0:03",
                                              "left"]  # standard input read from a file: the fraction in bytes
    assert from_pipe.line(5).split() == ["5", "inputs", "5.0/s"]  # a pipe: no total, no time left


def test_progress_on_the_command_line(capsys, monkeypatch):
    code, out, err = main(capsys, monkeypatch, "embed", *model("st_cls_normalized"), "--progress", "--batch-size",
                          "2", "--format", "jsonl", "a", "b", "c", "d", "e")
    assert code == 0
    assert "5/5" in err and "/s" in err and "done in" in err and err.endswith("\n")


# --- streaming through a real pipe (subprocesses) ------------------------------------------------------------------
def start(*argv):
    """`python -m xlmr_np ARGV` with pipes for stdin, stdout and stderr, unbuffered on this side."""
    return subprocess.Popen([sys.executable, "-m", "xlmr_np", *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, bufsize=0)


def read_line(stream, timeout=60.0) -> bytes:
    """One line of `stream`, or AssertionError if none is complete within `timeout` seconds."""
    import selectors
    import time

    data, deadline = b"", time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            assert left > 0 and selector.select(left), f"no complete line within {timeout} s (got {data!r})"
            chunk = os.read(stream.fileno(), 1)
            assert chunk, f"end of output before a complete line (got {data!r})"
            data += chunk
    return data


@pytest.mark.parametrize("argv,text", [
    (["tokenize", *model("qa")], "Hello world"),
    (["fill-mask", *model("masked_lm"), "--batch-size", "1"], "Paris is the <mask> of France."),
])
def test_results_stream_while_standard_input_is_still_open(argv, text):
    process = start(*argv, "--format", "jsonl")
    try:
        for _ in range(2):  # each line is answered before the next is even written
            process.stdin.write(text.encode() + b"\n")
            assert json.loads(read_line(process.stdout))["input"] == text
        process.stdin.close()
        assert process.wait(timeout=120) == 0
        assert process.stderr.read() == b""
    finally:
        process.kill()


def test_a_closed_pipe_stops_the_command_quietly():
    # as `... | head -1`: the reader goes away; the command stops at the next write, without a message
    process = start("tokenize", *model("qa"), "--format", "jsonl")
    try:
        process.stdin.write(b"Hello world\n")
        read_line(process.stdout)
        process.stdout.close()
        with pytest.raises(BrokenPipeError):  # it stops while its input still flows, not at the end of it
            for _ in range(10_000):
                process.stdin.write(b"Hello world\n" * 100)
        assert process.wait(timeout=120) == 141
        assert process.stderr.read() == b""
    finally:
        process.kill()


def test_ctrl_c_in_a_real_process():
    import signal

    process = start("tokenize", *model("qa"), "--format", "jsonl")
    try:
        process.stdin.write(b"Hello world\n")
        first = read_line(process.stdout)
        process.send_signal(signal.SIGINT)  # while it waits for the next line
        assert process.wait(timeout=120) == 130
        assert json.loads(first)["input"] == "Hello world" and process.stdout.read() == b""
        assert process.stderr.read() == b"xlmr-np: error: interrupted; the results of the first 1 input(s) were written\n"
    finally:
        process.kill()


def test_embed_with_input_runs_a_corpus_job(tmp_path, capsys, monkeypatch):
    """`embed --input FILE --output FILE` is wired to the corpus job (xlmr_np.embeddings.corpus)."""
    import numpy as np

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Hallo Welt\nBonjour le monde\nこんにちは世界\n", encoding="utf-8")
    code, out, err = main(capsys, monkeypatch, "embed", "--input", str(corpus), "--output", str(tmp_path / "v.npy"))
    assert code == 0, err
    vectors = np.load(tmp_path / "v.npy")
    assert vectors.shape == (3, 256) and np.isfinite(vectors).all()
