"""The same code runs on another array module: proven with a stand-in that refuses implicit host conversion.

Without a GPU in CI, tests/device_standin.py plays CuPy's part (its arrays raise on np.asarray, on NumPy
functions and on mixing with host arrays). Every class runs on it and must give the NumPy results. With
CuPy and a GPU present, test_cupy_matches_numpy runs the real thing.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import case_dir
from device_standin import DeviceArray, ImplicitHostConversion, device
from xlmr_np import backend
from xlmr_np.modeling import MODEL_CLASSES
from xlmr_np.audit.goldens import load_case

backend.register_array_module(DeviceArray, device)


def test_standin_refuses_implicit_conversion():
    x = device.asarray([1.0, 2.0])
    with pytest.raises(ImplicitHostConversion):
        np.asarray(x)
    with pytest.raises(TypeError):
        np.exp(x)
    with pytest.raises(ImplicitHostConversion):
        x + np.ones(2)
    assert backend.array_module(x) is device
    np.testing.assert_array_equal(backend.to_numpy(x), [1.0, 2.0])


CASES = ["model_base", "masked_lm", "relative_key_query", "head_mask_2d", "multiple_choice", "question_answering",
         "sequence_classification", "token_classification", "decoder_cross_attention", "inputs_embeds", "mask_3d"]


@pytest.mark.parametrize("name", CASES)
def test_every_path_runs_on_the_standin(name):
    path = case_dir(name)
    case, inputs = load_case(path)
    cls = MODEL_CLASSES[case["class"]]
    host = cls.from_pretrained(path)
    on_device = cls(host.config, {k: device.asarray(v) for k, v in host.params.items()})
    expected = host(**inputs, **case.get("call", {}))
    got = on_device(**{k: device.asarray(v) for k, v in inputs.items()}, **case.get("call", {}))
    for key in expected.keys():
        ours, theirs = got[key], expected[key]
        pairs = zip(ours, theirs) if isinstance(theirs, tuple) else [(ours, theirs)]
        for a, b in pairs:
            if isinstance(a, tuple):
                continue
            assert isinstance(a, DeviceArray), f"{key} came back as {type(a).__name__}, not a device array"
            np.testing.assert_allclose(backend.to_numpy(a), b, rtol=0, atol=1e-6)


def test_cache_and_generate_on_the_standin():
    path = case_dir("generate_greedy")
    case, inputs = load_case(path)
    host = MODEL_CLASSES[case["class"]].from_pretrained(path)
    on_device = type(host)(host.config, {k: device.asarray(v) for k, v in host.params.items()})
    expected = host.generate(inputs["input_ids"], max_new_tokens=4, eos_token_id=None)
    got = on_device.generate(inputs["input_ids"], max_new_tokens=4, eos_token_id=None)
    np.testing.assert_array_equal(backend.to_numpy(got), expected)


def test_cupy_matches_numpy():
    cupy = pytest.importorskip("cupy", reason="CuPy not installed: the GPU path is covered by the stand-in above")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # pragma: no cover - depends on the machine
        pytest.skip(f"no usable GPU: {err}")
    path = case_dir("masked_lm")
    case, inputs = load_case(path)
    cpu = MODEL_CLASSES[case["class"]].from_pretrained(path)
    gpu = MODEL_CLASSES[case["class"]].from_pretrained(path, device="gpu")
    np.testing.assert_allclose(cupy.asnumpy(gpu(**inputs).logits), cpu(**inputs).logits, atol=1e-5)
