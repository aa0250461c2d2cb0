"""Record HF slow XLMRobertaTokenizer's id mapping and API results as goldens (issue 13, parts 2-3).

Runs every scenario of tests/tokenizer_api_cases.py (the lists tests/test_tokenizer_api_live.py compares live)
with transformers' slow `XLMRobertaTokenizer` on the six SentencePiece models of reference_outputs/tokenizer
(the shipped one and those of tools/make_spm_models.py): per model the vocabulary facts, token <-> id
conversions of every piece, id and odd string, fixed texts' ids / tokens / decodes / split_special_tokens;
on the shipped model encode_plus, batch_encode_plus, prepare_for_model, truncate_sequences, pad,
add_tokens / add_special_tokens with the saved files, settable special tokens and constructor keywords.
tests/test_tokenizer_api_goldens.py compares xlmr_np with the file, without transformers.

Output: reference_outputs/tokenizer/api_goldens.json (big lists as sha256 digests of canonical JSON) and the
"api_goldens" entry of reference_outputs/tokenizer/MANIFEST.json (versions, sha256 of the golden and of the
models it was made from, scenario count).   Usage: python tools/make_tokenizer_api_goldens.py
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOK_DIR = os.path.join(ROOT, "reference_outputs", "tokenizer")
GOLDEN = os.path.join(TOK_DIR, "api_goldens.json")
sys.path.insert(0, os.path.join(ROOT, "tests"))
import tokenizer_api_cases as cases  # noqa: E402


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main() -> int:
    import sentencepiece
    import tokenizers
    import transformers

    transformers.logging.set_verbosity_error()
    paths = cases.model_paths(ROOT)
    results = {}
    for sid, run in cases.scenarios().items():
        with tempfile.TemporaryDirectory() as tmp:
            results[sid] = cases.jsonable(run(transformers, paths, tmp))
    versions = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "sentencepiece": sentencepiece.__version__, "python": platform.python_version()}
    golden = {"header": {"script": "tools/make_tokenizer_api_goldens.py",
                         "reference": "transformers.XLMRobertaTokenizer (slow)", "versions": versions,
                         "date": datetime.date.today().isoformat(),
                         "scenario_count": len(results), "digest": "sha256 of json.dumps(sort_keys=True, "
                         "ensure_ascii=False, separators=(',', ':')) (tests/tokenizer_api_cases.py)"},
              "scenarios": results}
    with open(GOLDEN, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=0, sort_keys=True)
        f.write("\n")

    manifest_path = os.path.join(TOK_DIR, "MANIFEST.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    files = {"api_goldens.json": sha256_file(GOLDEN)}
    files.update({os.path.relpath(p, TOK_DIR): sha256_file(p) for p in paths.values()})
    manifest["api_goldens"] = {"script": "tools/make_tokenizer_api_goldens.py", "versions": versions,
                               "reference": golden["header"]["reference"], "files": files,
                               "counts": {"scenarios": len(results), "models": len(paths)}}
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False, sort_keys=True)
        f.write("\n")
    print(f"wrote {GOLDEN}: {len(results)} scenarios, {os.path.getsize(GOLDEN)} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
