"""`golden export` (a golden bundle of our float64 oracle and float32 run for porters) and `golden check` (does a
checkpoint still hold the files a golden was recorded from?).

They parse options and print; the work is in xlmr_np.audit.bundle. Exit status: export 0 written, 2 usage or
input error; check 0 the hashes match, 1 the checkpoint changed (each changed file named with both hashes),
2 usage or input error.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .common import check_json_files


def register(subparsers):
    golden = subparsers.add_parser(
        "golden", help="write a golden bundle (inputs + every trace point as .npy/safetensors) or check one",
        description="Golden bundles for porters: every trace point of our float64 and float32 runs as .npy or "
                    "safetensors files, with manifest.json (sha256 of config, weights, inputs; versions; seed; "
                    "threads; date).")
    commands = golden.add_subparsers(dest="golden_command", metavar="SUBCOMMAND")
    export = commands.add_parser(
        "export", help="trace a checkpoint on inputs and write the bundle",
        description="Write BUNDLE/inputs/*.npy, BUNDLE/float64/<point>.npy, BUNDLE/float32/<point>.npy (or "
                    "<dtype>.safetensors) and BUNDLE/manifest.json. Inputs come from --inputs, or are drawn "
                    "at random from --seed (the seed is recorded).",
        epilog="Exit status: 0 written, 2 usage or input error.")
    export.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory")
    export.add_argument("--out", required=True, metavar="BUNDLE", help="folder to write (must not exist, or "
                                                                       "be a bundle with --overwrite)")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--inputs", metavar="NPZ", help="an .npz with input_ids and optionally attention_mask, "
                                                         "token_type_ids, position_ids ([B, T] integers)")
    source.add_argument("--seed", type=int, help="draw a random padded batch from this seed instead")
    export.add_argument("--max-length", type=int, metavar="L", help="longest drawn row (with --seed; default 32)")
    export.add_argument("--class", dest="cls", default="XLMRobertaModel", help="model class (default %(default)s)")
    export.add_argument("--format", dest="array_format", choices=["npy", "safetensors", "both"], default="npy",
                        help="array files: one .npy per point (default), one .safetensors per dtype, or both")
    export.add_argument("--dtype", choices=["both", "float64", "float32"], default="both",
                        help="which runs to record (default both: the float64 oracle and the float32 run)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    export.set_defaults(run=run_export)

    check = commands.add_parser(
        "check", help="check that a checkpoint holds the files a golden bundle was recorded from (hashes only)",
        description="Compare the sha256 of DIR's config.json and weight files with a golden's manifest.json "
                    "(a bundle, or a case written by tools/make_user_golden.py).",
        epilog="Exit status: 0 the same files, 1 the checkpoint changed, 2 usage or input error.")
    check.add_argument("--bundle", required=True, metavar="BUNDLE", help="bundle or golden case folder")
    check.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory")
    check.set_defaults(run=run_check)
    golden.set_defaults(run=lambda args: _no_subcommand(golden))


def _no_subcommand(parser) -> int:
    parser.print_help()
    return 2


def run_export(args) -> int:
    from ..audit.bundle import DTYPES, export_bundle
    from ..audit.trace import model_class, read_inputs

    try:
        cls = model_class(args.cls)
    except ValueError as err:
        raise UsageError(f"--class: {err}") from None
    model_dir = Path(args.model)
    check_json_files(model_dir)
    if args.max_length is not None and args.max_length < 1:
        raise UsageError(f"--max-length {args.max_length}: give at least 1")
    if args.inputs:
        try:
            inputs = read_inputs(args.inputs)
        except ValueError as err:
            raise UsageError(f"--inputs {err}") from None
    else:
        import numpy as np

        from ..audit.fuzz import draw_case
        from ..config import XLMRobertaConfig

        cfg = XLMRobertaConfig.from_pretrained(model_dir)
        inputs = draw_case(cfg, np.random.default_rng([args.seed, 0]), args.max_length or 32).arrays()
    dtypes = DTYPES if args.dtype == "both" else (args.dtype,)
    manifest = export_bundle(model_dir, inputs, args.out, cls, dtypes, args.array_format, seed=args.seed,
                             inputs_file=args.inputs, overwrite=args.overwrite)
    points = manifest["points"][dtypes[0]]
    print(f"wrote {args.out}: inputs {', '.join(manifest['inputs'])} "
          f"{list(manifest['inputs']['input_ids']['shape'])}; {len(points)} trace points per dtype "
          f"({', '.join(dtypes)}): {points[0]['name']} ... {points[-1]['name']}; manifest.json records the sha256 "
          f"of {', '.join(manifest['checkpoint'])}")
    return 0


def run_check(args) -> int:
    from ..audit.bundle import check_checkpoint, read_manifest
    from ..errors import ProvenanceError

    try:
        manifest = read_manifest(args.bundle)
    except ValueError as err:
        raise UsageError(f"--bundle {err}") from None
    if not Path(args.model).is_dir():
        raise UsageError(f"--model {args.model}: not a directory")
    try:
        check_checkpoint(manifest["checkpoint"], args.model, what=f"the golden {args.bundle}")
    except ProvenanceError as err:
        print(f"CHANGED: {err}")
        return 1
    files = ", ".join(manifest["checkpoint"])
    print(f"ok: {args.model} holds the files {args.bundle} was recorded from ({files}: sha256 match; recorded "
          f"{manifest.get('date', 'on an unknown date')})")
    return 0
