"""Checking xlmr_np against another implementation: the logic behind `verify` and `trace`, without the CLI.

- `xlmr_np.audit.goldens`: run the stored Hugging Face golden cases (reference_outputs/cases) and compare
  every output under the project's tolerance policy (`tolerance_for`, with its reasons).
- `xlmr_np.audit.trace`: per-layer activations of one forward pass and the first-divergence report.
- `xlmr_np.audit.bundle`: golden bundles for porters (.npy / safetensors + manifest.json with sha256 provenance)
  and the hash check before a golden is compared.
- `xlmr_np.audit.onnx_trace`: an ONNX model's activations under our trace names (onnxruntime, imported lazily).
- `xlmr_np.audit.fuzz`: seeded random batches through another implementation's program; shrinking a failure.

Both depend on the model face (xlmr_np.modeling) and nothing here imports xlmr_np.cli; the commands in
xlmr_np/cli/audit.py parse arguments and print what these modules compute.
"""
