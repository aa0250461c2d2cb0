"""xlmr_np's id mapping and HF tokenizer API against HF slow's stored results (issue 13, parts 2-3; no transformers).

reference_outputs/tokenizer/api_goldens.json holds, per scenario of tests/tokenizer_api_cases.py, what
transformers 4.57.6's slow XLMRobertaTokenizer returned (tools/make_tokenizer_api_goldens.py); each scenario
here runs the same function on xlmr_np and compares the canonical JSON exactly.
"""

import hashlib
import json
import os

import pytest

import tokenizer_api_cases as cases
import xlmr_np.text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOK_DIR = os.path.join(ROOT, "reference_outputs", "tokenizer")
with open(os.path.join(TOK_DIR, "api_goldens.json"), encoding="utf-8") as f:
    GOLDEN = json.load(f)
SCENARIOS = cases.scenarios()
PATHS = cases.model_paths(ROOT)


def test_every_stored_scenario_is_compared():
    # the golden's scenarios, those run here and the count in its header are the same: none silently skipped
    assert sorted(GOLDEN["scenarios"]) == sorted(SCENARIOS)
    assert len(SCENARIOS) == GOLDEN["header"]["scenario_count"] == 83
    assert GOLDEN["header"]["versions"]["transformers"] == "4.57.6"


def test_manifest_lists_the_golden_and_its_models():
    with open(os.path.join(TOK_DIR, "MANIFEST.json"), encoding="utf-8") as f:
        entry = json.load(f)["api_goldens"]
    assert entry["counts"]["scenarios"] == len(GOLDEN["scenarios"])
    for name, sha in entry["files"].items():
        with open(os.path.join(TOK_DIR, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sha, name
    models = sorted(os.path.relpath(p, TOK_DIR) for p in PATHS.values())
    assert models == sorted(set(entry["files"]) - {"api_goldens.json"})


@pytest.mark.parametrize("sid", sorted(SCENARIOS))
def test_scenario_equals_hf_slow(sid, tmp_path):
    ours = cases.jsonable(SCENARIOS[sid](xlmr_np.text, PATHS, str(tmp_path)))
    expected = GOLDEN["scenarios"][sid]
    if isinstance(expected, dict):  # key by key first, for a readable failure
        assert sorted(ours) == sorted(expected)
        for key in expected:
            assert ours[key] == expected[key], key
    assert ours == expected
