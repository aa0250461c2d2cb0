"""`python -m xlmr_np tokenize`: the tokens, ids and character offsets of texts (no model, only its tokenizer).

Reference behaviour: HF's XLMRobertaTokenizer(Fast) `__call__` with return_offsets_mapping=True, then
`convert_ids_to_tokens`. Input, --format and exit status as for the pipeline commands (xlmr_np/cli/pipelines.py).
"""
from __future__ import annotations

from ..errors import UsageError
from .common import default_model, guarded, output_format, read_inputs, table_rows, task_parser, write


def register(subparsers):
    tok = task_parser(subparsers, "tokenize", "show the tokens and ids of texts", "TEXT", model_only=False)
    tok.add_argument("--no-special-tokens", action="store_true", help="without <s> and </s>")
    tok.set_defaults(run=run_tokenize)


def _table_tokens(result):
    return table_rows(["id", "token", "start", "end"],
                      [[i, repr(t), s, e] for i, t, (s, e) in zip(result["input_ids"], result["tokens"],
                                                                    result["offsets"])])


@guarded
def run_tokenize(args):
    # Imported here, when the command runs (as the pipelines in cli/pipelines.py); not a cycle.
    from ..pipelines.base import load_tokenizer, resolve_directory

    items = read_inputs(args)
    try:
        tokenizer = load_tokenizer(resolve_directory(args.model or default_model()), args.tokenizer)
    except (ValueError, OSError) as err:
        raise UsageError(f"cannot load a tokenizer: {err}") from None
    fmt = output_format(args)
    results = []
    for text in items:
        enc = tokenizer(text, add_special_tokens=not args.no_special_tokens, return_offsets_mapping=True,
                        verbose=False)
        results.append({"input_ids": list(enc["input_ids"]),
                        "tokens": tokenizer.convert_ids_to_tokens(list(enc["input_ids"])),
                        "offsets": [list(o) for o in enc["offset_mapping"]]})
    write(fmt, items, results, [None] * len(items), _table_tokens)
    return 0
