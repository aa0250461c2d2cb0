"""Find a model directory: a local path, or a Hugging Face hub id in the local cache (or downloaded).

Reference behaviour: huggingface_hub 0.x `constants.py` (where the cache is: $HF_HUB_CACHE, else
$HF_HOME/hub, else $XDG_CACHE_HOME or ~/.cache, then huggingface/hub; HF_HUB_OFFLINE) and its
cache layout (`file_download.py`: models--org--name/refs/<revision> holds a commit hash,
snapshots/<commit>/ the files), as transformers 4.57.6 `from_pretrained` resolves a hub id through
`utils/hub.py` `cached_file`. A download happens only through huggingface_hub's
`snapshot_download`, when that package is installed and offline mode (HF_HUB_OFFLINE, or
transformers' TRANSFORMERS_OFFLINE) is off.
See docs/checkpoint_formats.md ("Which file is used").
"""

import os
import re
from pathlib import Path

from ..errors import CheckpointError

__all__ = ["resolve_model_dir", "hf_cache_dir"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")
_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.bin", "*.h5", "*.msgpack", "*.model", "*.txt"]


def hf_cache_dir():
    """The hub cache folder, as huggingface_hub decides it."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def _offline():
    return any(os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _from_cache(repo_id, revision, cache):
    """The snapshot folder of `repo_id` at `revision` (a ref name or a commit hash), or None."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    if not repo.is_dir():
        return None
    commit = revision
    ref = repo / "refs" / revision
    if re.fullmatch(r"[\w.\-]+", revision) and ref.is_file():
        commit = ref.read_text(encoding="utf-8", errors="replace").strip()
    if not re.fullmatch(r"[0-9a-fA-F]{7,64}", commit or ""):
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def resolve_model_dir(name_or_path, revision="main"):
    """A local model directory for `name_or_path`.

    In order: an existing local directory; a hub id (e.g. 'FacebookAI/xlm-roberta-base') already
    in the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub:
    models--org--name/refs/<revision> -> snapshots/<commit>/); a download with
    huggingface_hub.snapshot_download when that package is installed and HF_HUB_OFFLINE is unset.
    """
    path = Path(os.fspath(name_or_path)).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: is a file; pass the model directory that contains it")
    name = os.fspath(name_or_path)
    if not _HUB_ID.match(name) or ".." in name:
        raise CheckpointError(f"{name!r}: no such directory, and not a Hugging Face hub id "
                              f"('org/name')")
    cache = hf_cache_dir()
    snapshot = _from_cache(name, revision, cache)
    if snapshot is not None:
        return snapshot
    looked = (f"{name!r} is not a local directory and is not in the Hugging Face cache "
              f"({cache / ('models--' + name.replace('/', '--'))}, revision {revision!r})")
    if _offline():
        raise CheckpointError(f"{looked}; HF_HUB_OFFLINE is set, so nothing is downloaded. "
                              f"Download it where the network is reachable, or pass a local path.")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(f"{looked}; install huggingface_hub to download it "
                              f"(pip install huggingface_hub), or pass a local path.") from None
    try:
        return Path(snapshot_download(repo_id=name, revision=revision, cache_dir=cache,
                                      allow_patterns=_ALLOW_PATTERNS))
    except Exception as e:  # network, auth, missing repo: huggingface_hub has many error types
        raise CheckpointError(f"{looked}, and downloading it failed: {type(e).__name__}: {e}") from e
