"""`python -m xlmr_np tokenize`: the tokens, ids and character offsets of texts (no model, only its tokenizer).

Reference behaviour: HF's XLMRobertaTokenizer(Fast) `__call__` with return_offsets_mapping=True, then
`convert_ids_to_tokens`. Input, --format, streaming and exit status as for the pipeline commands
(xlmr_np/cli/pipelines.py): each line's record is written as soon as it is tokenized, so a 20 MB standard input
starts answering at once and holds one line in memory at a time.
"""
from __future__ import annotations

from ..errors import UsageError
from .common import (Inputs, Writer, check_json_files, default_model, output_format, progress_for, serve, table_rows,
                     task_parser)

BATCH = 64  # lines after which the automatic progress line appears (each line's record is flushed at once)


def register(subparsers):
    tok = task_parser(subparsers, "tokenize", "show the tokens and ids of texts",
                      "Show the token ids, pieces and character offsets of each text, as the model's "
                      "sentencepiece tokenizer makes them (no forward pass).",
                      "TEXT", "the default, the shipped demo model models/xlmr-demo, gives its tokenizer",
                      model_only=False)
    tok.add_argument("--no-special-tokens", action="store_true", help="without <s> and </s>")
    tok.set_defaults(run=run_tokenize)


def _table_tokens(result):
    return table_rows(["id", "token", "start", "end"],
                      [[i, repr(t), s, e] for i, t, (s, e) in zip(result["input_ids"], result["tokens"],
                                                                    result["offsets"])])


def run_tokenize(args):
    # Imported here, when the command runs (as the pipelines in cli/pipelines.py); not a cycle.
    from ..pipelines.base import load_tokenizer, resolve_directory

    inputs = Inputs(args)
    try:
        directory = resolve_directory(args.model or default_model())
        check_json_files(directory, args.tokenizer)
        tokenizer = load_tokenizer(directory, args.tokenizer)
    except (ValueError, OSError) as err:
        raise UsageError(f"cannot load a tokenizer: {err}") from None

    def tokenize(texts):
        results = []
        for text in texts:
            enc = tokenizer(text, add_special_tokens=not args.no_special_tokens, return_offsets_mapping=True,
                            verbose=False)
            results.append({"input_ids": list(enc["input_ids"]),
                             "tokens": tokenizer.convert_ids_to_tokens(list(enc["input_ids"])),
                             "offsets": [list(o) for o in enc["offset_mapping"]]})
        return results

    writer = Writer(output_format(args), _table_tokens)
    return serve(inputs, tokenize, writer, 1, progress=progress_for(args, inputs, BATCH))
