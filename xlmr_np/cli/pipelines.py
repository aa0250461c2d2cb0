"""The pipeline commands of `python -m xlmr_np`: fill-mask, classify, ner, qa, embed, zero-shot.

Each runs a pipeline of xlmr_np.pipelines (HF's `pipeline(task)` equivalents) on texts given as arguments, or
read from standard input one per line when there are none (or when the only argument is "-"). `qa` reads
"question<TAB>context" lines, or questions with --context; `classify --pairs` reads "text<TAB>text_pair" lines
(transformers-cli's `pipe` convention).

Output (--format): `table` for people (the default on a terminal), `jsonl` (the default otherwise: one
{"input": ..., "result": ...} object per line, in input order), or `json` (one list of those objects).
An input that cannot be processed gives {"input": ..., "error": "..."} in JSON, a line on stderr, and
exit status 1; the others are still answered. Exit status: 0 all answered, 1 some input failed,
2 bad usage (options, a missing or unsuitable model, no input). Messages on stderr start with
"xlmr-np: error:" or "xlmr-np: warning:". A progress bar goes to stderr when it is a terminal and the
input spans more than one batch (--progress / --no-progress to force).

Without --model the shipped demo model (models/xlmr-demo, a masked LM) is used: it serves fill-mask and
embed (and tokenize, xlmr_np/cli/tokenize.py); the other tasks need a fine-tuned checkpoint.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path

from ..errors import PipelineError, UsageError
from .common import PROG, default_model, guarded, output_format, positive, read_inputs, table_rows, task_parser, write


def register(subparsers):
    fill = task_parser(subparsers, "fill-mask", "predict the tokens hidden behind <mask>",
                       "TEXT with at least one <mask>")
    fill.add_argument("--top-k", type=int, default=5, help="candidates per mask (default 5)")
    fill.add_argument("--targets", nargs="+", metavar="TOKEN",
                      help="score only these tokens (vocabulary pieces such as ▁Paris, or words)")
    fill.set_defaults(run=run_fill_mask)

    classify = task_parser(subparsers, "classify", "label texts (or text pairs) with a sequence classifier",
                           "TEXT to classify")
    classify.add_argument("--top-k", type=int, default=1, help="labels per text (default 1); 0 = all")
    classify.add_argument("--function-to-apply", choices=["softmax", "sigmoid", "none"],
                          help="score function (default: from the config, as HF)")
    classify.add_argument("--pairs", action="store_true",
                          help="each input is 'text<TAB>text_pair' (cross-encoders, rerankers)")
    classify.set_defaults(run=run_classify)

    ner = task_parser(subparsers, "ner", "find entities with a token classifier", "TEXT")
    ner.add_argument("--aggregation-strategy", default="simple", choices=["none", "simple", "first", "average", "max"],
                     help="how tokens become entities (default simple)")
    ner.add_argument("--ignore-labels", default="O", metavar="L1,L2",
                     help="labels to drop, comma-separated (default O; '' keeps all)")
    ner.add_argument("--stride", type=int, help="cover long texts with windows overlapping by this many tokens")
    ner.set_defaults(run=run_ner)

    qa = task_parser(subparsers, "qa", "extract answers from a context",
                     "QUESTION (with --context), or 'question<TAB>context'")
    qa.add_argument("--context", help="the context for every question")
    qa.add_argument("--context-file", type=Path, help="read the context from this file")
    qa.add_argument("--top-k", type=int, default=1, help="answers per question (default 1)")
    qa.add_argument("--max-answer-len", type=int, default=15, help="longest answer in tokens (default 15)")
    qa.add_argument("--max-seq-len", type=int, help="tokens per window (default min(model max, 384))")
    qa.add_argument("--doc-stride", type=int, help="overlap of the context windows (default min(max_seq_len//2, 128))")
    qa.add_argument("--handle-impossible-answer", action="store_true", help="allow the empty answer")
    qa.set_defaults(run=run_qa)

    embed = task_parser(subparsers, "embed", "sentence embeddings (pooled token vectors)", "TEXT")
    embed.add_argument("--pooling", metavar="MODE",
                       help="cls, mean, max, mean_sqrt_len_tokens, weightedmean, lasttoken (or 'a,b' to concatenate);"
                            " default: the folder's 1_Pooling/config.json, else mean")
    embed.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                       help="L2-normalise (default: as the folder's modules.json says, else no)")
    embed.set_defaults(run=run_embed)

    zero = task_parser(subparsers, "zero-shot", "rank candidate labels with an NLI model", "TEXT")
    zero.add_argument("--labels", required=True, help="candidate labels, comma-separated")
    zero.add_argument("--hypothesis-template", default="This example is {}.",
                      help="hypothesis for each label, with {} for the label")
    zero.add_argument("--multi-label", action="store_true", help="score each label independently")
    zero.set_defaults(run=run_zero_shot)


# --- running a pipeline ------------------------------------------------------------------------------------------
def load(task, args, **options):
    # Imported here, when a command runs, so that building the parser (--help) does not load the models. Not a
    # cycle: xlmr_np.pipelines imports nothing from xlmr_np.cli.
    from ..pipelines import pipeline

    model = args.model or default_model()
    kwargs = {"batch_size": args.batch_size, "dtype": args.dtype}
    if args.tokenizer:
        kwargs["tokenizer"] = args.tokenizer
    if kwargs["batch_size"] < 1:
        raise UsageError("--batch-size must be at least 1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unused-weight notices are not the user's business here
            pipe = pipeline(task, model=model, **kwargs, **options)
    except (PipelineError, ValueError, OSError) as err:
        hint = "" if args.model else " (the default demo model is a masked LM: pass --model DIR for this task)"
        raise UsageError(f"cannot use model {os.fspath(model)!r} for {task}: {err}{hint}") from None
    return pipe


def run_task(args, task, items, call, options=None):
    """Run `call(pipe, list_of_items)` over all items; isolate failing items; print; return the exit status."""
    pipe = load(task, args, **(options or {}))
    fmt = output_format(args)
    show = args.progress if args.progress is not None else (sys.stderr.isatty() and len(items) > pipe.batch_size)
    bar = ProgressBar() if show else None
    pipe.progress = bar
    results, errors = [None] * len(items), [None] * len(items)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for i, r in enumerate(call(pipe, items)):
                results[i] = r
        except PipelineError:  # one bad input: answer the others one by one, report the bad ones
            pipe.progress = None
            for i, item in enumerate(items):
                try:
                    results[i] = call(pipe, [item])[0]
                except PipelineError as err:
                    errors[i] = str(err)
    if bar is not None:
        bar.finish()
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"{PROG}: warning: {message}", file=sys.stderr)
    for i, err in enumerate(errors):
        if err is not None:
            print(f"{PROG}: error: input {i + 1}: {err}", file=sys.stderr)
    write(fmt, items, results, errors, TABLES[task])
    return 1 if any(e is not None for e in errors) else 0


class ProgressBar:
    """`[#####.....] done/total` redrawn in place on stderr after each batch."""

    def __init__(self, width=30):
        self.width = width

    def __call__(self, done, total):
        filled = int(self.width * done / max(total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
        sys.stderr.flush()

    def finish(self):
        sys.stderr.write("\n")
        sys.stderr.flush()


# --- tables (--format table), one per task ------------------------------------------------------------------------
def _table_fill_mask(result):
    groups = result if result and isinstance(result[0], list) else [result]
    text = ""
    for m, group in enumerate(groups):
        if len(groups) > 1:
            text += f"  mask {m + 1}:\n"
        text += table_rows(["score", "token", "token_str", "sequence"],
                           [[f"{c['score']:.4f}", c["token"], repr(c["token_str"]), c["sequence"]] for c in group])
    return text


def _table_labels(result):
    result = result if isinstance(result, list) else [result]
    return table_rows(["label", "score"], [[r["label"], f"{r['score']:.4f}"] for r in result])


def _table_entities(result):
    key = "entity_group" if result and "entity_group" in result[0] else "entity"
    return table_rows([key, "score", "start", "end", "word"],
                      [[e[key], f"{e['score']:.4f}", e["start"], e["end"], repr(e["word"])] for e in result])


def _table_answers(result):
    result = result if isinstance(result, list) else [result]
    return table_rows(["score", "start", "end", "answer"],
                      [[f"{a['score']:.4f}", a["start"], a["end"], repr(a["answer"])] for a in result])


def _table_embedding(result):
    head = ", ".join(f"{x:.4f}" for x in result[:6])
    norm = math.sqrt(sum(x * x for x in result))
    return f"  dim {len(result)}  norm {norm:.4f}  [{head}{', ...' if len(result) > 6 else ''}]\n"


def _table_zero_shot(result):
    return table_rows(["label", "score"], [[l, f"{s:.4f}"] for l, s in zip(result["labels"], result["scores"])])


TABLES = {"fill-mask": _table_fill_mask, "text-classification": _table_labels, "token-classification": _table_entities,
          "question-answering": _table_answers, "sentence-embeddings": _table_embedding,
          "zero-shot-classification": _table_zero_shot}


# --- the commands ------------------------------------------------------------------------------------------------
@guarded
def run_fill_mask(args):
    positive(args.top_k, "--top-k")
    items = read_inputs(args)
    options = {"top_k": args.top_k} | ({"targets": args.targets} if args.targets else {})

    def call(pipe, texts):
        out = pipe(texts, **options)
        return [out] if len(texts) == 1 else out

    return run_task(args, "fill-mask", items, call)


@guarded
def run_classify(args):
    items = read_inputs(args)
    if args.pairs:
        bad = [n + 1 for n, line in enumerate(items) if "\t" not in line]
        if bad:
            raise UsageError(f"--pairs expects 'text<TAB>text_pair' lines; line(s) {bad[:5]} have no tab")
        items = [tuple(line.split("\t", 1)) for line in items]
    top_k = None if args.top_k == 0 else args.top_k
    if top_k is not None:
        positive(top_k, "--top-k")
    options = {"top_k": top_k} | ({"function_to_apply": args.function_to_apply} if args.function_to_apply else {})

    def call(pipe, batch):
        texts = [{"text": a, "text_pair": b} for a, b in batch] if args.pairs else list(batch)
        return pipe(texts, **options)

    return run_task(args, "text-classification", items, call)


@guarded
def run_ner(args):
    items = read_inputs(args)
    options = {"aggregation_strategy": args.aggregation_strategy,
               "ignore_labels": [x.strip() for x in args.ignore_labels.split(",") if x.strip()]}
    if args.stride is not None:
        options["stride"] = args.stride

    def call(pipe, texts):
        return pipe(texts, **options)  # a list in gives a list of entity lists out

    return run_task(args, "token-classification", items, call)


def _qa_items(args):
    """(question, context) pairs: each question with --context / --context-file, else 'question<TAB>context'."""
    context = args.context
    if args.context_file is not None:
        if context is not None:
            raise UsageError("give --context or --context-file, not both")
        try:
            context = args.context_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read --context-file: {err}") from None
    items = read_inputs(args)
    if context is not None:
        return [(question, context) for question in items]
    bad = [n + 1 for n, line in enumerate(items) if "\t" not in line]
    if bad:
        raise UsageError(f"without --context each input must be 'question<TAB>context'; line(s) {bad[:5]} have no tab")
    return [tuple(line.split("\t", 1)) for line in items]


@guarded
def run_qa(args):
    positive(args.top_k, "--top-k")
    positive(args.max_answer_len, "--max-answer-len")
    items = _qa_items(args)
    options = {"top_k": args.top_k, "max_answer_len": args.max_answer_len,
               "handle_impossible_answer": args.handle_impossible_answer}
    options.update({k: v for k, v in (("max_seq_len", args.max_seq_len), ("doc_stride", args.doc_stride))
                    if v is not None})

    def call(pipe, batch):
        out = pipe(question=[q for q, _ in batch], context=[c for _, c in batch], **options)
        return [out] if len(batch) == 1 else out

    return run_task(args, "question-answering", items, call)


@guarded
def run_embed(args):
    items = read_inputs(args)
    options = {k: v for k, v in (("pooling", args.pooling), ("normalize", args.normalize)) if v is not None}

    def call(pipe, texts):
        return list(pipe(texts, **options))

    return run_task(args, "sentence-embeddings", items, call)


@guarded
def run_zero_shot(args):
    items = read_inputs(args)
    options = {"candidate_labels": args.labels, "hypothesis_template": args.hypothesis_template,
               "multi_label": args.multi_label}

    def call(pipe, texts):
        return pipe(texts, **options)  # a list in gives a list of results out

    return run_task(args, "zero-shot-classification", items, call)
