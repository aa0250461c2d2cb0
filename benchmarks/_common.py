"""Helpers shared by the benchmarks: the machine, the optional peer runtimes, memory of child processes.

- the machine: NumPy's BLAS thread count (asked of the loaded OpenBLAS) and a dict of CPU, cores, BLAS and
  library versions with the date, printed above every table;
- the peers, each optional (None and a printed line when its package is absent):
  ONNX Runtime: torch.onnx export of Hugging Face's XLMRobertaModel (the TorchScript exporter, dynamo=False,
  eager attention: the graph shape `onnxruntime.transformers.optimizer`'s BERT fusions recognise; the dynamo
  exporter's graph got no Attention fusion with onnxruntime 1.32), optimised with
  `optimize_model(model_type="bert")`, cached next to the checkpoint;
  CTranslate2: `ctranslate2.converters.TransformersConverter`, whose XLM-R loader reads the checkpoint as
  XLMRobertaForSequenceClassification (the classifier is unused: `Encoder.forward_batch` returns the body's
  last_hidden_state), cached likewise;
- memory: RSS and PSS summed over a process tree (Linux /proc).

Imported by the scripts in this folder (`sys.path` gets this folder); not part of the package.
"""
from __future__ import annotations

import ctypes
import datetime
import importlib
import importlib.util
import json
import os
import platform
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKENIZER_DIR = ROOT / "reference_outputs" / "tokenizer"  # the shipped multilingual sentencepiece model
TOKENIZER_FILES = ("sentencepiece.bpe.model", "special_tokens_map.json", "tokenizer_config.json")

# Pause before each timed call: after a call, OpenBLAS's idle threads spin for up to ~0.1 s (and OpenMP's, in
# torch, ONNX Runtime and CTranslate2, for a while) before sleeping; without the pause they would take cycles
# from whichever library runs next on the same cores.
SETTLE_SECONDS = 0.25


def load_script(name: str):
    """Another benchmark script of this folder as a module (bench_forward's checkpoint maker, ...)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def optional(package: str):
    """The module, or None after printing that the contestants needing it are skipped."""
    try:
        return importlib.import_module(package)
    except ImportError:
        print(f"  skipped: {package} is not installed (pip install -e .[bench])", flush=True)
        return None


# --- the machine ------------------------------------------------------------------------------------------
def blas_threads() -> int:
    """NumPy's BLAS thread count, asked of the loaded OpenBLAS itself (else the environment, else the CPUs)."""
    try:
        libraries = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()}
    except OSError:
        libraries = set()
    for library in sorted(libraries):
        lib = ctypes.CDLL(library)
        for symbol in ("openblas_get_num_threads", "openblas_get_num_threads64_",
                       "scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads"):
            function = getattr(lib, symbol, None)
            if function is not None:
                return int(function())
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def version(package: str):
    """The installed version of a distribution, or None."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(threads: int) -> dict:
    """CPU, cores, thread count, BLAS, library versions (None where absent) and the date."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
        "numpy": np.__version__, "blas": f"{blas.get('name')} {blas.get('version')}",
    }
    for package in ("torch", "transformers", "sentence-transformers", "onnxruntime", "ctranslate2"):
        info[package] = version(package)
    try:
        import torch

        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "other"
    except ImportError:
        info["torch_blas"] = None
    return info


def machine_line(info: dict) -> str:
    """One Markdown sentence naming the machine and every version, for the top of a report."""
    versions = ", ".join(f"{name} {info[name]}" + (f" ({info['torch_blas']})" if name == "torch" else "")
                         for name in ("torch", "transformers", "sentence-transformers", "onnxruntime", "ctranslate2")
                         if info.get(name))
    return (f"Machine: {info['cpu']}, {info['cores']} cores; {info['threads']} threads for NumPy's BLAS and for "
            f"every peer. NumPy {info['numpy']} ({info['blas']}), {versions}, Python {info['python']}; "
            f"{info['date']}.")


def settle():
    """The pause before a timed call (see SETTLE_SECONDS)."""
    time.sleep(SETTLE_SECONDS)


# --- ONNX Runtime -----------------------------------------------------------------------------------------
def onnx_model(directory: Path, target: Path) -> tuple:
    """(path of the optimised .onnx, fused-operator counts) for the checkpoint in `directory`, made once.

    Export: transformers.XLMRobertaModel (eager attention, float32) through torch.onnx.export with
    dynamo=False, inputs input_ids and attention_mask [batch, sequence] (both axes dynamic), outputs
    last_hidden_state and pooler_output. Optimisation: onnxruntime.transformers.optimizer.optimize_model with
    model_type="bert" and the checkpoint's heads and width; it fuses each layer's attention into one
    Attention op (Q, K, V as one [D, 3D] product), residual + bias + LayerNorm into SkipLayerNormalization and
    bias + GELU into BiasGelu. No EmbedLayerNormalization: XLM-R's position ids start after the padding id
    and skip pad tokens (HF's create_position_ids_from_input_ids), which that fused op does not compute.
    """
    optimized, stats_file = target / "optimized.onnx", target / "fused_ops.json"
    if optimized.exists() and stats_file.exists():
        return optimized, json.loads(stats_file.read_text())
    import torch
    import transformers
    from onnxruntime.transformers.optimizer import optimize_model

    target.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"  exporting {directory} to ONNX (once, into {target}) ...", flush=True)
    config = json.loads((directory / "config.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unused lm_head weights; the TorchScript exporter's deprecation notice
        transformers.logging.set_verbosity_error()
        hf = transformers.XLMRobertaModel.from_pretrained(directory, attn_implementation="eager",
                                                          dtype=torch.float32).eval()
        ids = torch.full((2, 16), 5, dtype=torch.long)
        axes = {0: "batch", 1: "sequence"}
        exported = target / "exported.onnx"
        torch.onnx.export(hf, (ids, torch.ones_like(ids)), str(exported), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state", "pooler_output"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes,
                                        "pooler_output": {0: "batch"}})
        del hf
        model = optimize_model(str(exported), model_type="bert", num_heads=config["num_attention_heads"],
                               hidden_size=config["hidden_size"])
    stats = {name: count for name, count in model.get_fused_operator_statistics().items() if count}
    model.save_model_to_file(str(optimized))
    exported.unlink()
    stats_file.write_text(json.dumps(stats))
    print(f"  ONNX export and optimisation: {time.perf_counter() - start:.0f} s", flush=True)
    return optimized, stats


def check_fusions(stats: dict, layers: int) -> str:
    """A line with the fused-op counts, saying whether every layer got its Attention, SkipLayerNorm, BiasGelu."""
    expected = {"Attention": layers, "SkipLayerNormalization": 2 * layers, "BiasGelu": layers}
    missing = [f"{name} {stats.get(name, 0)}/{count}" for name, count in expected.items()
               if stats.get(name, 0) < count]
    counts = ", ".join(f"{name} {count}" for name, count in sorted(stats.items()))
    return f"ORT fused ops: {counts}" + (f" (NOT FULLY FUSED: {', '.join(missing)})" if missing else
                                         " (every layer fused)")


def ort_session(path: Path, threads: int):
    """An onnxruntime.InferenceSession on the CPU: `threads` intra-op threads, every graph optimisation."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_hidden(session, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """last_hidden_state [B, T, D] of the exported model for int64 ids and mask [B, T]."""
    return session.run(["last_hidden_state"], {"input_ids": ids.astype(np.int64),
                                               "attention_mask": mask.astype(np.int64)})[0]


# --- CTranslate2 ------------------------------------------------------------------------------------------
def ct2_model(directory: Path, target: Path) -> Path:
    """The CTranslate2 (float32) conversion of the checkpoint in `directory`, made once into `target`.

    The converter reads the tokenizer for the model's vocabulary: the shipped one (8,002 pieces) is copied
    in, and the vocabulary is padded with placeholder tokens to the checkpoint's vocab_size (random
    benchmark checkpoints have xlm-roberta-base's 250,002 rows; a smaller one keeps its first rows). The benchmarks pass token ids, so the token
    strings are never looked up. int8 is chosen when loading (compute_type="int8"), from the same files.
    """
    if (target / "model.bin").exists():
        return target
    import transformers
    from ctranslate2.converters import transformers as ct2_transformers

    start = time.perf_counter()
    print(f"  converting {directory} to CTranslate2 (once, into {target}) ...", flush=True)
    source = target.with_name(target.name + "-source")
    source.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        if not (source / name).exists():
            os.symlink((directory / name).resolve(), source / name)
    for name in TOKENIZER_FILES:
        shutil.copy(TOKENIZER_DIR / name, source / name)

    class PaddedVocabularyLoader(ct2_transformers.XLMRobertaLoader):
        def get_vocabulary(self, model, tokenizer):
            tokens = super().get_vocabulary(model, tokenizer)[:model.config.vocab_size]
            return tokens + [f"<unused{i}>" for i in range(len(tokens), model.config.vocab_size)]

    loaders = ct2_transformers._MODEL_LOADERS
    original = loaders["XLMRobertaConfig"]
    loaders["XLMRobertaConfig"] = PaddedVocabularyLoader()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the classifier head is newly initialised (and unused)
            transformers.logging.set_verbosity_error()
            ct2_transformers.TransformersConverter(str(source)).convert(str(target), force=True)
    finally:
        loaders["XLMRobertaConfig"] = original
    shutil.rmtree(source)
    print(f"  CTranslate2 conversion: {time.perf_counter() - start:.0f} s", flush=True)
    return target


def ct2_hidden(encoder, ids: np.ndarray, lengths) -> np.ndarray:
    """last_hidden_state [B, T, D] from a ctranslate2.Encoder for right-padded ids [B, T] and real lengths.

    CTranslate2 numbers positions 0, 1, ... within each sequence (its converter drops the two rows before
    HF's first position, padding_idx + 1), which equals HF's position ids for right-padded batches.
    """
    import ctranslate2

    view = ctranslate2.StorageView.from_array(np.ascontiguousarray(ids, dtype=np.int32))
    out = encoder.forward_batch(view, ctranslate2.StorageView.from_array(np.asarray(lengths, dtype=np.int32)))
    return np.array(out.last_hidden_state)


# --- memory -----------------------------------------------------------------------------------------------
def status_kb(field: str, pid="self") -> int:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM) in kB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}; this benchmark needs Linux")


def available_memory_bytes() -> int:
    """MemAvailable of /proc/meminfo (what can be allocated without swapping)."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# --- where a forward's time goes ----------------------------------------------------------------------------
def phase_profile(call, team, phases: dict, repeats: int, pause: float,
                  names=("GEMMs", "attention", "softmax", "GELU", "LayerNorm", "waiting", "rest")) -> dict:
    """Median self time per phase of `call()`, by wrapping the functions in `phases` ({(module, name): phase})
    and the team's barrier ("waiting"). Only the calling thread is timed: on the threaded path every thread
    runs the same phases on its share at the same time, so the caller's timeline is the forward's. Self time:
    a timed function called inside another is counted once, in its own phase. "rest" is what is left."""
    import statistics
    import threading

    main_thread, spent, stack = threading.main_thread(), {}, []

    def timed(phase, function):
        def wrapper(*args, **kwargs):
            if threading.current_thread() is not main_thread:
                return function(*args, **kwargs)
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = stack.pop()
                spent[phase] = spent.get(phase, 0.0) + elapsed - nested
                if stack:
                    stack[-1] += elapsed
        return wrapper

    class TimedBarrier:
        def __init__(self, barrier):
            self.barrier, self.wait = barrier, timed("waiting", barrier.wait)

        def __getattr__(self, name):  # abort, reset
            return getattr(self.barrier, name)

    originals = {key: getattr(*key) for key in phases}
    barrier, runs = team.barrier, []
    try:
        for (module, name), phase in phases.items():
            setattr(module, name, timed(phase, originals[(module, name)]))
        team.barrier = TimedBarrier(barrier)
        for _ in range(repeats):
            time.sleep(pause)
            spent.clear()
            start = time.perf_counter()
            call()
            total = time.perf_counter() - start
            runs.append({**spent, "rest": total - sum(spent.values()), "total": total})
    finally:
        for (module, name), function in originals.items():
            setattr(module, name, function)
        team.barrier = barrier
    return {phase: statistics.median(run.get(phase, 0.0) for run in runs) for phase in names + ("total",)}
