"""The pipeline commands of `python -m xlmr_np`: fill-mask, classify, ner, qa, embed, zero-shot.

Each runs a pipeline of xlmr_np.pipelines (HF's `pipeline(task)` equivalents) on texts given as arguments, or
read from standard input one per line when there are none (or when the only argument is "-"). `qa` reads
"question<TAB>context" lines, or questions with --context; `classify --pairs` reads "text<TAB>text_pair" lines
(transformers-cli's `pipe` convention). Text is UTF-8 (--encoding-errors replace reads other bytes as U+FFFD).

Results are streamed: the inputs are read lazily and served `--batch-size` at a time, and each batch's records
are written (and flushed) as soon as it is done, in input order; length-sorting for padding happens within a
batch. Output (--format): `table` for people (the default on a terminal), `jsonl` (the default otherwise: one
{"input": ..., "result": ...} object per line), or `json` (one list of those objects, written element by
element). An input that cannot be processed gives {"input": ..., "error": "..."}, an `xlmr-np: error: input N:
...` line on stderr, and exit status 1; the others are still answered. The exit statuses and the rest of the
conventions (messages, Ctrl-C, a closed pipe) are in xlmr_np/cli/__init__.py.

Without --model a shipped model serves fill-mask, embed and tokenize (models/xlmr-demo, a masked LM) and
classify (models/xlmr-langid, a language identifier); ner, qa and zero-shot need a fine-tuned checkpoint.
"""
from __future__ import annotations

import argparse
import math
import os
import warnings
from pathlib import Path

from ..errors import PipelineError, UsageError
from ..embeddings.command import add_corpus_arguments, run_corpus
from .common import (Inputs, Writer, check_json_files, decode, default_model, output_format, positive, progress_for,
                     serve, table_rows, task_parser)

NEEDS = "the default demo model (a masked LM) cannot serve this command: pass a checkpoint with {}"


def register(subparsers):
    fill = task_parser(subparsers, "fill-mask", "predict the tokens hidden behind <mask>",
                       "Predict the likeliest tokens for each <mask> in each text (HF's fill-mask pipeline): "
                       "one list of candidates per mask, best first.",
                       "TEXT with at least one <mask>")
    fill.add_argument("--top-k", type=int, default=5, help="candidates per mask (default 5)")
    fill.add_argument("--targets", action="append", metavar="TOKEN[,TOKEN...]",
                      help="score only these tokens (vocabulary pieces such as ▁Paris, or words): one value, "
                           "comma-separated; repeat the option for more (--targets Paris,Rome --targets Berlin)")
    fill.set_defaults(run=run_fill_mask)

    classify = task_parser(subparsers, "classify", "label texts (or text pairs) with a sequence classifier",
                           "Label each text, or each 'text<TAB>text_pair' line with --pairs (cross-encoders, "
                           "rerankers), with a sequence classifier (HF's text-classification pipeline).",
                           "TEXT to classify", "a sequence classifier (XLMRobertaForSequenceClassification); "
                                               "default: the shipped language identifier models/xlmr-langid")
    classify.add_argument("--top-k", type=int, default=1, help="labels per text (default 1); 0 = all")
    classify.add_argument("--function-to-apply", choices=["softmax", "sigmoid", "none"],
                          help="score function (default: from the config, as HF)")
    classify.add_argument("--pairs", action="store_true",
                          help="each input is 'text<TAB>text_pair' (cross-encoders, rerankers)")
    classify.set_defaults(run=run_classify)

    ner = task_parser(subparsers, "ner", "find entities with a token classifier",
                      "Find the named entities of each text with a token classifier (HF's token-classification "
                      "pipeline), grouped into words and entities by --aggregation-strategy.",
                      "TEXT", NEEDS.format("a token-classification head (XLMRobertaForTokenClassification)"))
    ner.add_argument("--aggregation-strategy", default="simple", choices=["none", "simple", "first", "average", "max"],
                     help="how tokens become entities (default simple)")
    ner.add_argument("--ignore-labels", default="O", metavar="L1,L2",
                     help="labels to drop, comma-separated (default O; '' keeps all)")
    ner.add_argument("--stride", type=int, help="cover long texts with windows overlapping by this many tokens")
    ner.set_defaults(run=run_ner)

    qa = task_parser(subparsers, "qa", "extract answers from a context",
                     "Extract the answer to each question from its context (HF's question-answering pipeline): "
                     "questions with --context/--context-file, or 'question<TAB>context' lines.",
                     "QUESTION (with --context), or 'question<TAB>context'",
                     NEEDS.format("a question-answering head (XLMRobertaForQuestionAnswering)"))
    qa.add_argument("--context", help="the context for every question")
    qa.add_argument("--context-file", type=Path, help="read the context from this file (UTF-8)")
    qa.add_argument("--top-k", type=int, default=1, help="answers per question (default 1)")
    qa.add_argument("--max-answer-len", type=int, default=15, help="longest answer in tokens (default 15)")
    qa.add_argument("--max-seq-len", type=int, help="tokens per window (default min(model max, 384))")
    qa.add_argument("--doc-stride", type=int, help="overlap of the context windows (default min(max_seq_len//2, 128))")
    qa.add_argument("--handle-impossible-answer", action="store_true", help="allow the empty answer")
    qa.set_defaults(run=run_qa)

    embed = task_parser(subparsers, "embed", "sentence embeddings (pooled token vectors)",
                        "Embed each text as one vector: the encoder's token vectors pooled (and optionally "
                        "normalised) as the model folder's sentence-transformers files say.",
                        "TEXT")
    embed.add_argument("--pooling", metavar="MODE",
                       help="cls, mean, max, mean_sqrt_len_tokens, weightedmean, lasttoken (or 'a,b' to concatenate);"
                            " default: the folder's 1_Pooling/config.json, else mean")
    embed.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                       help="L2-normalise (default: as the folder's modules.json says, else no)")
    add_corpus_arguments(embed)  # --input FILE --output FILE [--workers N]: a corpus job (docs/embeddings.md)
    embed.set_defaults(run=run_embed)

    zero = task_parser(subparsers, "zero-shot", "rank candidate labels with an NLI model",
                       "Rank --labels for each text with an NLI model (HF's zero-shot-classification pipeline): "
                       "each label becomes a hypothesis the text may entail.",
                       "TEXT", NEEDS.format("an NLI head that has an 'entailment' label"))
    zero.add_argument("--labels", required=True, help="candidate labels, comma-separated")
    zero.add_argument("--hypothesis-template", default="This example is {}.",
                      help="hypothesis for each label, with {} where the label goes (default: %(default)s)")
    zero.add_argument("--multi-label", action="store_true", help="score each label independently")
    zero.set_defaults(run=run_zero_shot)


# --- running a pipeline ------------------------------------------------------------------------------------------
def load(task, args, **options):
    # Imported here, when a command runs, so that building the parser (--help) does not load the models. Not a
    # cycle: xlmr_np.pipelines imports nothing from xlmr_np.cli.
    from ..pipelines import pipeline
    from ..pipelines.base import resolve_directory

    model = args.model or default_model(task)
    positive(args.batch_size, "--batch-size")
    hint = "" if args.model else " (the shipped default model for this task: pass --model DIR for another)"
    try:
        directory = resolve_directory(model)
    except (ValueError, OSError) as err:
        raise UsageError(f"cannot use model {os.fspath(model)!r} for {task}: {err}") from None
    check_json_files(directory, args.tokenizer)
    kwargs = {"batch_size": args.batch_size, "dtype": args.dtype}
    if args.tokenizer:
        kwargs["tokenizer"] = args.tokenizer
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unused-weight notices are not the user's business here
            pipe = pipeline(task, model=directory, **kwargs, **options)
    except (PipelineError, ValueError, OSError) as err:
        raise UsageError(f"cannot use model {os.fspath(model)!r} for {task}: {err}{hint}") from None
    return pipe


def run_task(args, task, call, prepare=None, check=None, options=None):
    """Serve the inputs `--batch-size` at a time through `call(pipe, values)`, streaming the records; return the
    exit status. `check(pipe)` may refuse options against the loaded model (a UsageError) before any input."""
    inputs = Inputs(args)
    pipe = load(task, args, **(options or {}))
    if check is not None:
        check(pipe)
    writer = Writer(output_format(args), TABLES[task])
    return serve(inputs, lambda values: call(pipe, values), writer, pipe.batch_size, prepare,
                 progress_for(args, inputs, pipe.batch_size))


def split_pair(what):
    """prepare() for 'a<TAB>b' inputs: the pair, or the reason it is not one."""
    def prepare(text):
        if "\t" not in text:
            raise UsageError(f"no tab: {what}")
        return tuple(text.split("\t", 1))
    return prepare


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
def target_list(values):
    """--targets values (each comma-separated, the option repeatable) as one list of tokens."""
    targets = [t.strip() for value in values for t in value.split(",") if t.strip()]
    if not targets:
        raise UsageError("--targets got no token: give them comma-separated (--targets Paris,Rome), or repeat "
                         "the option")
    return targets


def run_fill_mask(args):
    positive(args.top_k, "--top-k")
    targets = target_list(args.targets) if args.targets is not None else None
    options = {"top_k": args.top_k} | ({"targets": targets} if targets else {})

    def check(pipe):
        if targets:
            try:
                pipe.target_ids(targets)
            except PipelineError as err:
                raise UsageError(f"--targets: {err}") from None

    def call(pipe, texts):
        out = pipe(texts, **options)
        return [out] if len(texts) == 1 else out

    return run_task(args, "fill-mask", call, check=check)


def run_classify(args):
    top_k = None if args.top_k == 0 else args.top_k
    if top_k is not None:
        positive(top_k, "--top-k")
    options = {"top_k": top_k} | ({"function_to_apply": args.function_to_apply} if args.function_to_apply else {})
    prepare = split_pair("--pairs expects 'text<TAB>text_pair' lines") if args.pairs else None

    def call(pipe, batch):
        texts = [{"text": a, "text_pair": b} for a, b in batch] if args.pairs else list(batch)
        return pipe(texts, **options)

    return run_task(args, "text-classification", call, prepare)


def run_ner(args):
    options = {"aggregation_strategy": args.aggregation_strategy,
               "ignore_labels": [x.strip() for x in args.ignore_labels.split(",") if x.strip()]}
    if args.stride is not None:
        options["stride"] = args.stride

    def call(pipe, texts):
        return pipe(texts, **options)  # a list in gives a list of entity lists out

    return run_task(args, "token-classification", call)


def _qa_context(args):
    """--context, or the text of --context-file (UTF-8, as --encoding-errors says), or None."""
    context = args.context
    if args.context_file is not None:
        if context is not None:
            raise UsageError("give --context or --context-file, not both")
        try:
            data = args.context_file.read_bytes()
        except OSError as err:
            raise UsageError(f"cannot read --context-file {args.context_file}: {err.strerror or err}") from None
        context, error = decode(data, args.encoding_errors, f"--context-file {args.context_file}")
        if error is not None:
            raise UsageError(error)
    return context


def run_qa(args):
    positive(args.top_k, "--top-k")
    positive(args.max_answer_len, "--max-answer-len")
    context = _qa_context(args)
    if context is not None:
        def prepare(question):
            return question, context
    else:
        prepare = split_pair("without --context each input must be 'question<TAB>context'")
    options = {"top_k": args.top_k, "max_answer_len": args.max_answer_len,
               "handle_impossible_answer": args.handle_impossible_answer}
    options.update({k: v for k, v in (("max_seq_len", args.max_seq_len), ("doc_stride", args.doc_stride))
                    if v is not None})

    def call(pipe, batch):
        out = pipe(question=[q for q, _ in batch], context=[c for _, c in batch], **options)
        return [out] if len(batch) == 1 else out

    return run_task(args, "question-answering", call, prepare)


def run_embed(args):
    if args.input is not None:  # a corpus file: length-sorted, resumable, on --workers processes
        return run_corpus(args, args.model or default_model("sentence-embeddings"))
    options = {k: v for k, v in (("pooling", args.pooling), ("normalize", args.normalize)) if v is not None}

    def call(pipe, texts):
        return list(pipe(texts, **options))

    return run_task(args, "sentence-embeddings", call)


def check_template(template):
    """--hypothesis-template must take the label through one {} (str.format's rules)."""
    fix = "write {} where the label goes (e.g. \"This example is {}.\"), and {{ }} for a literal brace"
    try:
        filled = template.format("LABEL")
    except KeyError as err:
        raise UsageError(f"--hypothesis-template {template!r} names a field {{{err.args[0]}}}: {fix}") from None
    except IndexError:
        raise UsageError(f"--hypothesis-template {template!r} has more than one {{}} or a numbered field: "
                         f"{fix}") from None
    except ValueError as err:
        raise UsageError(f"--hypothesis-template {template!r} is not a format string ({err}): {fix}") from None
    if filled == template:
        raise UsageError(f"--hypothesis-template {template!r} has no {{}}: {fix}")


def run_zero_shot(args):
    check_template(args.hypothesis_template)
    if not [label for label in args.labels.split(",") if label.strip()]:
        raise UsageError("--labels got no label: give the candidate labels comma-separated (--labels sport,politics)")
    options = {"candidate_labels": args.labels, "hypothesis_template": args.hypothesis_template,
               "multi_label": args.multi_label}

    def call(pipe, texts):
        return pipe(texts, **options)  # a list in gives a list of results out

    return run_task(args, "zero-shot-classification", call)
