"""Checking xlmr_np against another implementation: the logic behind `verify` and `trace`, without the CLI.

- `xlmr_np.audit.goldens`: run the stored Hugging Face golden cases (reference_outputs/cases) and compare
  every output under the project's tolerance policy (`tolerance_for`, with its reasons).
- `xlmr_np.audit.points`: the trace points' naming scheme (`POINTS`, `canonical_name`, `naming_table`).
- `xlmr_np.audit.trace`: `trace(model, input_ids, **inputs)` -> {name: array} in forward order, run on the
  reference kernels; `read_trace` / `write_trace` / `read_inputs` for the .npz files; `trace_checkpoint`.
- `xlmr_np.audit.compare`: `compare(ours, theirs, tolerance, where, expect)` -> Report (exit_code,
  first_divergence, per-point statistics, missing, not_compared) and the `TOLERANCES` presets with reasons.
- `xlmr_np.audit.report`: `format_text(report)`, `format_json(report)` (schema "xlmr_np.trace.report/1").
- `xlmr_np.audit.hf_trace`: `trace_hf(hf_model, **inputs)`, the same names from a transformers model
  (torch imported inside it; for tools and tests).
- `xlmr_np.audit.bundle`: golden bundles for porters (`export_bundle`, `read_bundle`, `replay_bundle`: every
  trace point as .npy / safetensors + manifest.json with sha256 provenance) and the hash check before a golden
  is compared.
- `xlmr_np.audit.onnx_trace`: `trace_onnx(path, inputs)`, an ONNX model's sub-steps under our trace names
  (onnxruntime, imported lazily).
- `xlmr_np.audit.fuzz`: seeded random batches through another implementation's program; shrinking a failure.
Every comparison (trace --against / --bundle / --onnx, bundles, fuzz) is compare.compare, reported by report.py.

The functions and presets above are also attributes of this package, imported on first use (PEP 562):
`xlmr_np.audit.trace_hf`, `xlmr_np.audit.TOLERANCES`, `xlmr_np.audit.format_json`, ... except `trace` and
`compare`, which are also module names: import them from their modules. Everything here depends on the model face (xlmr_np.modeling) and nothing imports
xlmr_np.cli; the commands in xlmr_np/cli/audit.py parse arguments and print what these modules compute.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "TOLERANCES": "compare", "Tolerance": "compare", "Report": "compare", "Point": "compare",
    "format_text": "report", "format_json": "report", "report_dict": "report",
    "canonical_name": "points", "naming_table": "points", "POINTS": "points",
    "read_trace": "trace", "write_trace": "trace", "read_inputs": "trace", "token_ids": "trace",
    "trace_checkpoint": "trace", "trace_hf": "hf_trace", "trace_onnx": "onnx_trace",
    "export_bundle": "bundle", "read_bundle": "bundle", "replay_bundle": "bundle",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
