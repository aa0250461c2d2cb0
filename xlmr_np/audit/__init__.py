"""Checking xlmr_np against another implementation: the logic behind `verify` and `trace`, without the CLI.

- `xlmr_np.audit.goldens`: run the stored Hugging Face golden cases (reference_outputs/cases) and compare
  every output under the project's tolerance policy (`tolerance_for`, with its reasons).
- `xlmr_np.audit.trace`: per-layer activations of one forward pass and the first-divergence report.

Both depend on the model face (xlmr_np.modeling) and nothing here imports xlmr_np.cli; the commands in
xlmr_np/cli/audit.py parse arguments and print what these modules compute.
"""
