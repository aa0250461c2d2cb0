"""The corpus job's command-line options and runner, for the command line to wire into `embed`:

    # in xlmr_np/cli/pipelines.py, after the embed parser is made:
    from ..embeddings.command import add_corpus_arguments, run_corpus
    add_corpus_arguments(embed)
    # and at the top of run_embed:
    if args.input is not None:
        return run_corpus(args, args.model or default_model())

Options added (none clashes with embed's own --model, --tokenizer, --batch-size, --dtype, --normalize,
--pooling, --format, --progress, which run_corpus reads where they apply): --input, --output, --field,
--input-format, --workers, --chunk-size, --on-too-long, --keep-empty, --prompt-name, --prompt,
--max-length, --model-kind, --restart. The job itself: embeddings/corpus.py.
"""
from __future__ import annotations

import argparse
import sys

from .corpus import INPUT_FORMATS, KINDS, embed_corpus


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("corpus job (--input FILE --output FILE)")
    group.add_argument("--input", metavar="FILE", help="embed a whole file: .txt (a text per line), .jsonl, .csv "
                                                       "or .parquet (the text in --field)")
    group.add_argument("--output", metavar="FILE", help="with --input: .npy (one row per input, in order) or "
                                                        ".jsonl ({'index', 'embedding'} per line)")
    group.add_argument("--field", default="text", help="the JSON field / CSV or parquet column (default: text)")
    group.add_argument("--input-format", choices=INPUT_FORMATS, help="default: by the file's extension")
    group.add_argument("--workers", type=int, default=1, help="worker processes sharing the mapped weights "
                                                              "(default 1)")
    group.add_argument("--chunk-size", type=int, default=1024,
                       help="inputs per resumable chunk (default 1024)")
    group.add_argument("--on-too-long", choices=["truncate", "error"], default="truncate",
                       help="a text longer than the model's limit: cut it and count it (default), or stop")
    group.add_argument("--keep-empty", action="store_true", help="embed empty texts instead of stopping")
    group.add_argument("--prompt-name", help="a prompt of config_sentence_transformers.json (e.g. query)")
    group.add_argument("--prompt", help="a prompt text put before every input")
    group.add_argument("--max-length", type=int, help="BGE-M3: tokens per input (default 8192)")
    group.add_argument("--model-kind", choices=KINDS, default="auto",
                       help="auto: bge-m3 when sparse_linear.pt and colbert_linear.pt are there")
    group.add_argument("--restart", action="store_true", help="discard the parts of an earlier, different job")


def encode_options(args, kind: str) -> dict:
    options = {}
    if kind == "bge-m3":
        if getattr(args, "max_length", None):
            options["max_length"] = args.max_length
    else:
        for name in ("prompt_name", "prompt"):
            if getattr(args, name, None) is not None:
                options[name] = getattr(args, name)
        if getattr(args, "normalize", None):
            options["normalize_embeddings"] = True
    return options


def run_corpus(args, model) -> int:
    """Run the corpus job the options describe; a summary goes to stderr. Raises ValueError on bad input."""
    from .corpus import model_kind
    from ..pipelines.base import resolve_directory

    if not args.output:
        raise ValueError("--input needs --output FILE (.npy or .jsonl)")
    kind = model_kind(resolve_directory(model), getattr(args, "model_kind", "auto"))
    show = getattr(args, "progress", None)
    show = sys.stderr.isatty() if show is None else show

    def progress(done, total):
        if show:
            print(f"\rchunks {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)

    model_options = {"dtype": getattr(args, "dtype", "float32")}
    if getattr(args, "tokenizer", None):
        model_options["tokenizer"] = args.tokenizer
    report = embed_corpus(model, args.input, args.output, field=args.field, input_format=args.input_format,
                          kind=kind, batch_size=getattr(args, "batch_size", 32) or 32, chunk_size=args.chunk_size,
                          workers=args.workers, on_too_long=args.on_too_long,
                          empty="keep" if args.keep_empty else "error", encode_options=encode_options(args, kind),
                          model_options=model_options, restart=args.restart, progress=progress)
    note = f", {report.chunks_reused} reused from an earlier run" if report.chunks_reused else ""
    print(f"{report.rows} inputs -> {report.output} ({report.rows} x {report.dim}, {report.kind}); "
          f"{report.truncated} truncated; {report.chunks} chunks{note}; {report.seconds:.1f} s on "
          f"{report.workers} worker(s)", file=sys.stderr)
    return 0
