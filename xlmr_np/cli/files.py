"""The file commands: `convert SRC DST`, any checkpoint xlmr_np reads -> config.json + model.safetensors.

Reference behaviour: HF's `save_pretrained(safe_serialization=True)` (see xlmr_np/weights/convert.py, which does the
work). This module parses the options and prints the paths written, one per line. Exit status 0, or 2 with
one "xlmr-np: error: ..." line when the source cannot be read or DST already holds a model (weights or
config.json) and --overwrite is not given. The files appear in DST only once all are written.
"""
from __future__ import annotations

import re

from ..errors import UsageError
from ..weights.convert import DEFAULT_MAX_SHARD_SIZE, convert

# the library's names for the options -> the command line's, in its messages
OPTION_NAMES = ((re.compile(r"pass overwrite=True \(--overwrite\)|pass overwrite=True"), "pass --overwrite"),
                (re.compile(r"\bmax_shard_size\b|\bmax shard size\b"), "--max-shard-size"))


def register(subparsers):
    parser = subparsers.add_parser(
        "convert", help="convert any checkpoint (.bin, shards, .h5, .msgpack) to model.safetensors",
        description="Write config.json + model.safetensors (sharded above --max-shard-size) from "
                    "any checkpoint xlmr_np reads; HF transformers loads the result.",
        epilog="Exit status: 0 written, 2 the source cannot be read or DST already holds weights.")
    parser.add_argument("src", help="model directory or hub id in the local Hugging Face cache")
    parser.add_argument("dst", help="output directory (created if missing)")
    parser.add_argument("--max-shard-size", default=DEFAULT_MAX_SHARD_SIZE,
                        help="largest shard, e.g. 5GB, 500MB, 2GiB (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the model already in DST (its config.json, model.safetensors / shards)")
    parser.set_defaults(run=run_convert)


def run_convert(args) -> int:
    try:
        written = convert(args.src, args.dst, max_shard_size=args.max_shard_size, overwrite=args.overwrite)
    except (ValueError, OSError) as err:
        raise UsageError(cli_wording(str(err))) from None
    for path in written:
        print(path, flush=True)
    return 0


def cli_wording(message: str) -> str:
    """A library message with the command line's option names (--overwrite, not overwrite=True)."""
    for pattern, name in OPTION_NAMES:
        message = pattern.sub(name, message)
    return message
