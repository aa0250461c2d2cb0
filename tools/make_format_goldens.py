"""Write one small random XLM-RoBERTa checkpoint in every file format Hugging Face produces.

The goldens for xlmr_np.weights: the same weights saved by HF transformers 4.57.6 itself as
    safetensors/           model.safetensors                       (PreTrainedModel.save_pretrained)
    safetensors_sharded/   model-0000k-of-0000n.safetensors + model.safetensors.index.json
    pytorch/               pytorch_model.bin                       (safe_serialization=False)
    pytorch_sharded/       pytorch_model-0000k-of-0000n.bin + pytorch_model.bin.index.json
    tf/                    tf_model.h5      (TFXLMRobertaForMaskedLM.from_pretrained(pt, from_pt=True))
    flax/                  flax_model.msgpack (FlaxXLMRobertaForMaskedLM.from_pretrained(pt, from_pt=True))
    tf_base/, flax_base/   the bare XLMRobertaModel (with pooler) in TF and Flax, to check prefixes
plus
    reference_state_dict.npz       the MaskedLM state dict exactly as HF wrote model.safetensors
    reference_state_dict_base.npz  the same for the bare model (safetensors written to a temp dir)
    outputs.npz                    input_ids and HF PyTorch MaskedLM logits on them (float32)
    MANIFEST.json                  versions, seed, config, sha256 and size of every file

Every parameter is random (LayerNorm weights and biases too), so a reader that swaps, transposes,
drops or renames anything fails. Nothing here comes from xlmr_np.

Needs, beside torch 2.13 and transformers 4.57.6: tensorflow-cpu + tf-keras + h5py (TF) and
jax[cpu] + flax + msgpack (Flax). They need not be in the system interpreter; a venv works:
    python -m venv --system-site-packages /tmp/fmtenv
    /tmp/fmtenv/bin/pip install tensorflow-cpu tf-keras h5py "jax[cpu]" flax msgpack
    /tmp/fmtenv/bin/python tools/make_format_goldens.py
"""

import datetime
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import safetensors.numpy  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaModel  # noqa: E402

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reference_outputs" / "formats"
SEED = 20240604
SHARD_SIZE = "30KB"  # the model is ~80 KB of float32: forces 3+ shards

CONFIG = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=37, max_position_embeddings=40, type_vocab_size=1,
              layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
              hidden_act="gelu")


def randomise(model, seed):
    """Draw every parameter at random; LayerNorm weights near 1 so activations stay sane."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


def import_tf_flax():
    try:
        import tensorflow as tf
        import h5py  # noqa: F401
        import tf_keras  # noqa: F401
        from transformers import TFXLMRobertaForMaskedLM, TFXLMRobertaModel
    except ImportError as e:
        sys.exit(f"TensorFlow goldens need tensorflow-cpu, tf-keras and h5py ({e}); see the docstring")
    try:
        import flax  # noqa: F401
        import jax  # noqa: F401
        import msgpack  # noqa: F401
        from transformers import FlaxXLMRobertaForMaskedLM, FlaxXLMRobertaModel
    except ImportError as e:
        sys.exit(f"Flax goldens need jax, flax and msgpack ({e}); see the docstring")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return {"tf": (TFXLMRobertaForMaskedLM, TFXLMRobertaModel),
            "flax": (FlaxXLMRobertaForMaskedLM, FlaxXLMRobertaModel)}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def versions():
    import flax
    import h5py
    import jax
    import msgpack
    import tensorflow as tf
    import tf_keras
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__,
            "safetensors": safetensors.__version__, "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__, "h5py": h5py.__version__, "jax": jax.__version__,
            "flax": flax.__version__, "msgpack": ".".join(map(str, msgpack.version))}


def main():
    classes = import_tf_flax()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    cfg = XLMRobertaConfig(**CONFIG)

    mlm = randomise(XLMRobertaForMaskedLM(cfg), SEED)
    mlm.save_pretrained(OUT / "safetensors", safe_serialization=True)
    mlm.save_pretrained(OUT / "safetensors_sharded", safe_serialization=True, max_shard_size=SHARD_SIZE)
    mlm.save_pretrained(OUT / "pytorch", safe_serialization=False)
    mlm.save_pretrained(OUT / "pytorch_sharded", safe_serialization=False, max_shard_size=SHARD_SIZE)
    # The reference: the tensors of HF's own model.safetensors, read by the safetensors package.
    ref = safetensors.numpy.load_file(str(OUT / "safetensors" / "model.safetensors"))
    np.savez(OUT / "reference_state_dict.npz", **ref)

    base = randomise(XLMRobertaModel(cfg, add_pooling_layer=True), SEED + 1)
    with tempfile.TemporaryDirectory() as tmp:
        base.save_pretrained(tmp, safe_serialization=True)
        ref_base = safetensors.numpy.load_file(os.path.join(tmp, "model.safetensors"))
        np.savez(OUT / "reference_state_dict_base.npz", **ref_base)
        for fmt, (tf_or_flax_mlm, tf_or_flax_base) in classes.items():
            tf_or_flax_base.from_pretrained(tmp, from_pt=True).save_pretrained(OUT / f"{fmt}_base")
    for fmt, (tf_or_flax_mlm, _) in classes.items():
        tf_or_flax_mlm.from_pretrained(OUT / "pytorch", from_pt=True).save_pretrained(OUT / fmt)

    g = torch.Generator().manual_seed(SEED + 2)
    input_ids = torch.randint(3, CONFIG["vocab_size"], (2, 9), generator=g)
    input_ids[:, 0], input_ids[:, -1] = 0, 2
    with torch.no_grad():
        logits = mlm(input_ids=input_ids).logits
    np.savez(OUT / "outputs.npz", input_ids=input_ids.numpy(), logits=logits.numpy())

    files = sorted(p for p in OUT.rglob("*") if p.is_file() and p.name != "MANIFEST.json")
    manifest = {
        "generator": "tools/make_format_goldens.py",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions(),
        "seed": SEED,
        "config": CONFIG,
        "models": {"maskedlm": "XLMRobertaForMaskedLM, seed SEED, every parameter random",
                   "base": "XLMRobertaModel(add_pooling_layer=True), seed SEED+1"},
        "max_shard_size": SHARD_SIZE,
        "total_bytes": sum(p.stat().st_size for p in files),
        "files": {p.relative_to(OUT).as_posix(): {"sha256": sha256(p), "bytes": p.stat().st_size}
                  for p in files},
    }
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(files)} files, {manifest['total_bytes']} bytes, under {OUT}")


if __name__ == "__main__":
    main()
