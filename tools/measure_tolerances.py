"""Measure the errors behind the tolerance presets of xlmr_np/audit/compare.py (TOLERANCES) and print them.

For a few random XLM-R configurations (every parameter drawn, as tests/hf_helpers.py does: biases and
LayerNorm included) and a padded batch with token types, it traces Hugging Face's model in float64 (the
reference) and compares, at every trace point, with:
  - HF in float32, float16 and bfloat16 (model.to(dtype)), and with torch's dynamic int8 quantisation of every
    nn.Linear (torch.ao.quantization.quantize_dynamic);
  - xlmr_np in float64 and float32 (the reference kernels, as `trace` runs them).
Per row it prints the largest max |d| / max |reference| over all points (and which point), the median over
points, and the largest ulp count. The presets are written next to these numbers in compare.py.

    python3 tools/measure_tolerances.py            # ~30 s on 2 cores

Needs torch and transformers (tests/hf_helpers.py builds the models). Versions are printed first.
"""
from __future__ import annotations

import platform
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

CONFIGS = (
    dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128),
    dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=8, intermediate_size=512, hidden_act="gelu_new"),
    dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=96,
         position_embedding_type="relative_key_query"),
)
PRESET_OF = {"HF float32": "float32", "HF float16": "float16", "HF bfloat16": "bfloat16",
             "HF int8 (dynamic, Linear)": "int8", "xlmr_np float64": "float64", "xlmr_np float32": "float32"}
COMMON = dict(vocab_size=120, max_position_embeddings=40, type_vocab_size=2, layer_norm_eps=1e-5)


def inputs(seed: int):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, 120, size=(3, 16))
    ids[:, 0], lengths = 0, [16, 11, 6]
    for row, length in enumerate(lengths):
        ids[row, length - 1] = 2
        ids[row, length:] = 1
    mask = (ids != 1).astype(np.int64)
    types = (np.arange(16)[None, :] >= np.array(lengths)[:, None] // 2).astype(np.int64) * mask
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


def main() -> int:
    import torch
    import transformers

    import xlmr_np
    from hf_helpers import random_hf_model
    from xlmr_np.audit.compare import TOLERANCES, compare
    from xlmr_np.audit.hf_trace import trace_hf
    from xlmr_np.audit.trace import trace

    warnings.filterwarnings("ignore", module="torch")  # quantize_dynamic's deprecation notices
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(1)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}, torch threads 1")
    worst: dict = {}
    for n, config in enumerate(CONFIGS):
        with tempfile.TemporaryDirectory() as directory:
            hf = random_hf_model("XLMRobertaModel", {**COMMON, **config}, seed=100 + n, directory=directory)
            feed = inputs(n)
            mask = feed["attention_mask"]
            reference = trace_hf(hf.double(), **feed)
            others = {f"HF {name}": trace_hf(hf.to(dtype), **feed) for name, dtype in
                      (("float32", torch.float32), ("float16", torch.float16), ("bfloat16", torch.bfloat16))}
            quantised = torch.ao.quantization.quantize_dynamic(hf.float(), {torch.nn.Linear}, dtype=torch.qint8)
            others["HF int8 (dynamic, Linear)"] = trace_hf(quantised, **feed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for dtype in ("float64", "float32"):
                    model = xlmr_np.XLMRobertaModel.from_pretrained(directory, dtype=dtype)
                    others[f"xlmr_np {dtype}"] = trace(model, **feed)
            for label, theirs in others.items():
                report = compare(reference, theirs, (0.0, 0.0), where=mask)  # tolerance 0: statistics only
                assert not report.missing and not report.shape_errors, (label, report.usage_problems)
                for p in report.points:
                    preset = TOLERANCES[PRESET_OF[label]]
                    worst.setdefault(label, []).append((p.rel_to_scale, p.max_abs / preset.allowed(p.scale),
                                                        f"config {n}: {p.name}"))
    print(f"\nerror against HF float64, over {len(CONFIGS)} random models x every trace point "
          f"(max |d| / max |reference| per point)")
    print("and the largest max |d| / allowed under the preset of that dtype (compare.TOLERANCES; < 1 passes)")
    print(f"{'implementation':28} {'largest':>9} {'median':>9}  {'largest at':28} {'preset':>8} {'/allowed':>9}")
    for label, rows in worst.items():
        rel = np.array([r[0] for r in rows])
        top = max(rows, key=lambda r: r[0])
        print(f"{label:28} {rel.max():9.2e} {np.median(rel):9.2e}  {top[2]:28} {PRESET_OF[label]:>8} "
              f"{max(r[1] for r in rows):9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
