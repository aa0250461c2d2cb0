"""Write a corpus of hostile and broken checkpoint files, each with the error a reader must raise.

Used by tests/test_hostile_files.py (into a temporary directory at test time; nothing is committed)
and runnable by hand:  python tools/make_hostile_corpus.py OUT_DIR

Contents (see CASES below for the full list and the message each must produce):
  * pytorch_model.bin archives, built by hand in torch.save's zip layout (no torch needed), whose
    pickles name globals that would run code (os.system, posix.system, builtins.eval/exec/getattr,
    subprocess.Popen, a class's __reduce__ payload, protocol-4 STACK_GLOBAL, INST, BUILD abuse).
    Their payloads would create OUT_DIR/SENTINEL; the test checks it never appears.
  * broken .bin archives: missing or oversized zip entries, compressed or duplicate entries,
    storages shorter than the shapes and strides claim, wrong persistent ids, legacy formats.
  * .safetensors files with huge header lengths and shapes, offsets outside the file,
    overlapping ranges, duplicate names, non-UTF-8 JSON.
  * sharded directories whose index points outside the directory (../, absolute, escaping
    symlink), at missing shards, or at the wrong shard; config.json that is not JSON or has
    wrong types; TF .h5 with external storage or links, Flax .msgpack with lying records.
Files are built from bytes; generating the corpus executes none of the payloads.
"""

import json
import os
import pickle
import struct
import sys
import warnings
import zipfile
from pathlib import Path

SENTINEL = "SENTINEL"

# ---- a tiny pickle assembler (protocol 2, as torch.save writes) ------------------------------


def p_str(s):
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def p_int(n):
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def p_tuple(*items):
    return b"(" + b"".join(items) + b"t"


def p_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def p_call(func, *args):
    return func + p_tuple(*args) + b"R"


def p_tensor(key, numel, size, stride, offset=0, stype="FloatStorage", pid_head="storage"):
    pid = p_tuple(p_str(pid_head), p_global("torch", stype), p_str(key), p_str("cpu"), p_int(numel))
    hooks = p_global("collections", "OrderedDict") + b")R"
    return p_call(p_global("torch._utils", "_rebuild_tensor_v2"),
                  pid + b"Q", p_int(offset), p_tuple(*map(p_int, size)),
                  p_tuple(*map(p_int, stride)), b"\x89", hooks)


def p_shared_tuple_bomb(depth):
    """A pickle fragment pushing t_depth, where t_0 = () and t_i = (t_{i-1}, t_{i-1}) through the memo:
    7 bytes a level, 2**depth leaves when walked (repr, hash, ==), one small tuple a level in memory."""
    return b")q\x00" + b"0h\x00h\x00\x86q\x00" * depth  # EMPTY_TUPLE BINPUT; then POP BINGET BINGET TUPLE2 BINPUT


def p_state_dict(entries):
    """entries: [(name, pickled value bytes)] -> an OrderedDict pickle like torch.save's."""
    body = b"".join(p_str(k) + v for k, v in entries)
    return (b"\x80\x02" + p_global("collections", "OrderedDict") + b")R"
            + b"(" + body + b"u" + b".")


def write_torch_zip(path, pkl, storages, prefix="archive", align=64, extra=(), compress=()):
    """Write `pkl` and raw storages in torch.save's zip layout (stored, 64-byte aligned data)."""
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        warnings.simplefilter("ignore")  # a duplicate entry is written on purpose in one case

        def add(name, data):
            info = zipfile.ZipInfo(f"{prefix}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED
            # pad the local header's extra field so the data starts on an `align` boundary
            here = z.fp.tell() + 30 + len(info.filename.encode())
            pad = -(here + 4) % align if align else 0
            info.extra = struct.pack("<HH", 0xCAFE, pad) + b"\x00" * pad if align else b""
            z.writestr(info, data)
        add("data.pkl", pkl)
        add("byteorder", b"little")
        for key, data in storages.items():
            add(f"data/{key}", data)
        add("version", b"3\n")
        for name, data in extra:
            add(name, data)


def f32(*values):
    return struct.pack(f"<{len(values)}f", *values)


class _ReducePayload:
    """Pickled by the stdlib itself: the classic `__reduce__` attack (never unpickled here)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


# ---- the corpus -----------------------------------------------------------------------------

def _good_bin(path, prefix="archive"):
    pkl = p_state_dict([("w", p_tensor("0", 6, (2, 3), (3, 1))), ("b", p_tensor("1", 3, (3,), (1,)))])
    write_torch_zip(path, pkl, {"0": f32(*range(6)), "1": f32(7, 8, 9)}, prefix=prefix)


def _safetensors(path, header, data=b""):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def _patch_central_size(path, member, new_size):
    """Rewrite a member's sizes in the zip central directory (small files: no zip64)."""
    data = bytearray(Path(path).read_bytes())
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            raise ValueError(f"{member} not in {path}")
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46:pos + 46 + n]) == member.encode():
            struct.pack_into("<II", data, pos + 20, new_size, new_size)  # compressed, uncompressed
            break
        pos += 4
    Path(path).write_bytes(bytes(data))


def make_corpus(out):
    """Write every case under `out`; return [(name, path, reader, message regex)].

    reader: 'torch' (torch_pickle.load_torch_file), 'safetensors' (safetensors_file.load_file),
    'dir' (files.read_state_dict), 'convert' (convert.convert to a fresh dir), all in xlmr_np.weights;
    'config' (xlmr_np.config.XLMRobertaConfig.from_pretrained).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sentinel = str(out / SENTINEL)
    cases = []

    def case(name, reader, match):
        path = out / name
        cases.append((name, path, reader, match))
        return path

    # -- pickles that would run code --------------------------------------------------------
    refused = r"refers to the global {}, which is not allowed"
    evil = {
        "os_system": (p_call(p_global("os", "system"), p_str(f"touch {sentinel}")), "os.system"),
        "posix_system": (p_call(p_global("posix", "system"), p_str(f"touch {sentinel}")), "posix.system"),
        "builtins_eval": (p_call(p_global("builtins", "eval"), p_str(f"open({sentinel!r}, 'w')")),
                          "builtins.eval"),
        "builtins_exec": (p_call(p_global("builtins", "exec"),
                                 p_str(f"open({sentinel!r}, 'w')")), "builtins.exec"),
        "py2_builtin_eval": (p_call(p_global("__builtin__", "eval"), p_str(f"open({sentinel!r}, 'w')")),
                             "__builtin__.eval"),
        "builtins_getattr": (p_call(p_global("builtins", "getattr"),
                                    p_global("collections", "OrderedDict"), p_str("__init__")),
                             "builtins.getattr"),
        "subprocess_popen": (p_call(p_global("subprocess", "Popen"),
                                    b"]" + b"(" + p_str("touch") + p_str(sentinel) + b"e"),
                             "subprocess.Popen"),
        "torch_load": (p_call(p_global("torch", "load"), p_str(sentinel)), "torch.load"),
        "numpy_reconstruct": (p_call(p_global("numpy.core.multiarray", "_reconstruct"),
                                     p_str("x")), "numpy.core.multiarray._reconstruct"),
    }
    for name, (value, glob) in evil.items():
        write_torch_zip(case(f"evil_{name}.bin", "torch", refused.format(glob.replace(".", r"\."))),
                        p_state_dict([("w", value)]), {})
    # the stdlib pickling a __reduce__ payload inside a state dict
    write_torch_zip(case("evil_reduce_payload.bin", "torch", r"the global (os|posix)\.system"),
                    pickle.dumps({"w": _ReducePayload(sentinel)}, protocol=2), {})
    # protocol 4: the global's names come from the stack (STACK_GLOBAL)
    write_torch_zip(case("evil_stack_global.bin", "torch", r"the global os\.system"),
                    b"\x80\x04" + p_str("os") + p_str("system") + b"\x93"
                    + p_tuple(p_str(f"touch {sentinel}")) + b"R.", {})
    # INST: protocol-0 class instantiation (find_class would refuse; the opcode is refused first)
    write_torch_zip(case("evil_inst_opcode.bin", "torch", r"opcode that builds arbitrary objects"),
                    b"(" + p_str(f"touch {sentinel}") + b"ios\nsystem\n.", {})
    # BUILD on an allowed function: would set attributes on the reader's own stand-in
    write_torch_zip(case("evil_build_on_function.bin", "torch", r"sets the state of a function"),
                    b"\x80\x02" + p_global("torch._utils", "_rebuild_tensor_v2")
                    + b"}" + p_str("__doc__") + p_str("pwned") + b"sb.", {})
    # the evil global hidden after a valid tensor
    good_then_evil = p_state_dict([("w", p_tensor("0", 2, (2,), (1,))),
                                   ("x", p_call(p_global("os", "system"), p_str(f"touch {sentinel}")))])
    write_torch_zip(case("evil_after_valid_tensor.bin", "torch", r"the global os\.system"),
                    good_then_evil, {"0": f32(1, 2)})

    # -- pickle bombs: 2**30 nodes in about 1 KB ---------------------------------------------------
    bomb = p_shared_tuple_bomb(30)
    too_big = r"builds a value of more than \d+ nodes"
    pid = p_tuple(p_str("storage"), p_global("torch", "FloatStorage"), p_str("0"), p_str("cpu"), p_int(1))
    hooks = p_global("collections", "OrderedDict") + b")R"
    write_torch_zip(case("bomb_persistent_id.bin", "torch", too_big), p_state_dict([(
        "w", p_call(p_global("torch._utils", "_rebuild_tensor_v2"), bomb + b"Q", p_int(0),
                    p_tuple(p_int(1)), p_tuple(p_int(1)), b"\x89", hooks))]), {"0": f32(1)})
    write_torch_zip(case("bomb_tensor_size.bin", "torch", too_big), p_state_dict([(
        "w", p_call(p_global("torch._utils", "_rebuild_tensor_v2"), pid + b"Q", p_int(0), bomb,
                    p_tuple(p_int(1)), b"\x89", hooks))]), {"0": f32(1)})
    write_torch_zip(case("bomb_state_dict_key.bin", "torch", too_big),
                    b"\x80\x02" + hooks + bomb + p_int(1) + b"s.", {})
    write_torch_zip(case("bin_tuple_key.bin", "torch", r"uses a tuple as a dict key"),
                    b"\x80\x02" + hooks + p_shared_tuple_bomb(3) + p_int(1) + b"s.", {})
    write_torch_zip(case("bin_cycle.bin", "torch", r"adds items to a list that is already inside"),
                    b"\x80\x02]q\x00h\x00a.", {})
    write_torch_zip(case("bin_bytearray8.bin", "torch", r"protocol-5 buffers"),
                    b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b".", {})

    # -- broken .bin archives ----------------------------------------------------------------
    ok = p_state_dict([("w", p_tensor("0", 6, (2, 3), (3, 1)))])
    write_torch_zip(case("bin_missing_storage.bin", "torch", r"storage '0' is missing"), ok, {})
    write_torch_zip(case("bin_missing_pickle.bin", "torch", r"data\.pkl is missing"), b"", {})
    Path(out / "bin_missing_pickle.bin").unlink()
    with zipfile.ZipFile(out / "bin_missing_pickle.bin", "w") as z:
        z.writestr("archive/data/0", f32(1, 2))
    write_torch_zip(case("bin_storage_short.bin", "torch", r"storage '0' has 8 bytes but the pickle claims 6"),
                    ok, {"0": f32(1, 2)})
    write_torch_zip(case("bin_shape_exceeds_storage.bin", "torch",
                         r"storage '0' holds 6 elements but a tensor of size \[4, 3\]"),
                    p_state_dict([("w", p_tensor("0", 6, (4, 3), (3, 1)))]), {"0": f32(*range(6))})
    write_torch_zip(case("bin_stride_exceeds_storage.bin", "torch", r"storage '0' holds 6 elements"),
                    p_state_dict([("w", p_tensor("0", 6, (2, 3), (1, 5)))]), {"0": f32(*range(6))})
    write_torch_zip(case("bin_offset_exceeds_storage.bin", "torch", r"storage '0' holds 6 elements"),
                    p_state_dict([("w", p_tensor("0", 6, (2, 3), (3, 1), offset=1))]), {"0": f32(*range(6))})
    write_torch_zip(case("bin_broadcast_stride.bin", "torch", r"holds 1 elements but a tensor of size \[1000000000000\]"),
                    p_state_dict([("w", p_tensor("0", 1, (10**12,), (0,)))]), {"0": f32(1)})
    write_torch_zip(case("bin_huge_numel.bin", "torch", r"claims 4611686018427387904 elements"),
                    p_state_dict([("w", p_tensor("0", 2**62, (2**31, 2**31), (2**31, 1)))]), {"0": f32(1)})
    write_torch_zip(case("bin_negative_size.bin", "torch", r"invalid tensor layout"),
                    p_state_dict([("w", p_tensor("0", 6, (-2, 3), (3, 1)))]), {"0": f32(*range(6))})
    write_torch_zip(case("bin_bad_persistent_id.bin", "torch", r"unexpected persistent id"),
                    p_state_dict([("w", p_tensor("0", 6, (2, 3), (3, 1), pid_head="module"))]),
                    {"0": f32(*range(6))})
    write_torch_zip(case("bin_unknown_storage_type.bin", "torch", r"the global torch\.UntypedStorage"),
                    p_state_dict([("w", p_tensor("0", 24, (2, 3), (3, 1), stype="UntypedStorage"))]),
                    {"0": f32(*range(6))})
    write_torch_zip(case("bin_compressed_entry.bin", "torch", r"compressed or encrypted"),
                    ok, {"0": f32(*range(6))}, compress=("data/0",))
    write_torch_zip(case("bin_duplicate_entry.bin", "torch", r"has the entry 'archive/data/0' twice"),
                    ok, {"0": f32(*range(6))}, extra=(("data/0", f32(*range(6))),))
    path = case("bin_entry_past_end.bin", "torch", r"claims 4000000 bytes, past the end of the file")
    write_torch_zip(path, ok, {"0": f32(*range(6))})
    _patch_central_size(path, "archive/data/0", 4_000_000)
    path = case("bin_truncated.bin", "torch", r"not a readable zip archive")
    _good_bin(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    write_torch_zip(case("bin_not_a_dict.bin", "torch", r"holds a list, not a state dict"),
                    b"\x80\x02](" + p_str("a") + b"e.", {})
    write_torch_zip(case("bin_nested_checkpoint.bin", "torch", r"entry 'state_dict' is a OrderedDict, not a tensor"),
                    p_state_dict([("state_dict", p_global("collections", "OrderedDict") + b")R")]), {})
    write_torch_zip(case("bin_garbage_pickle.bin", "torch", r"data\.pkl is corrupt"), b"\x80\x02\xff\xfe", {})
    write_torch_zip(case("bin_truncated_pickle.bin", "torch", r"data\.pkl is corrupt"), ok[:-2], {"0": f32(*range(6))})  # no SETITEMS/STOP
    case("bin_legacy_format.bin", "torch", r"legacy \(torch < 1\.6\)").write_bytes(
        b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.")
    case("bin_random_bytes.bin", "torch", r"not a torch checkpoint").write_bytes(b"\x00garbage" * 10)
    case("bin_empty.bin", "torch", r"not a torch checkpoint").write_bytes(b"")

    # -- broken safetensors ----------------------------------------------------------------------
    w = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    case("st_huge_header_len.safetensors", "safetensors", r"header length 18446744073709551615 exceeds").write_bytes(
        struct.pack("<Q", 2**64 - 1) + b"{}")
    case("st_header_past_eof.safetensors", "safetensors", r"header length 4096 runs past the end").write_bytes(
        struct.pack("<Q", 4096) + b"{}")
    _safetensors(case("st_huge_shape.safetensors", "safetensors", r"tensor 'w': .*needs"),
                 {"w": {"dtype": "F32", "shape": [2**31, 2**31, 2**31], "data_offsets": [0, 8]}}, b"\0" * 8)
    _safetensors(case("st_offsets_outside.safetensors", "safetensors", r"tensor 'w': .*run past the end"),
                 {"w": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}}, b"\0" * 8)
    _safetensors(case("st_overlap.safetensors", "safetensors", r"overlap tensor"),
                 {"w": w, "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12)
    _safetensors(case("st_duplicate_names.safetensors", "safetensors", r"duplicate key 'w'"),
                 b'{"w":' + json.dumps(w).encode() + b',"w":' + json.dumps(w).encode() + b"}", b"\0" * 8)
    _safetensors(case("st_not_utf8.safetensors", "safetensors", r"not valid UTF-8"),
                 b'{"\xc3\x28":' + json.dumps(w).encode() + b"}", b"\0" * 8)
    _safetensors(case("st_unknown_dtype.safetensors", "safetensors", r"unknown dtype 'F128'"),
                 {"w": dict(w, dtype="F128")}, b"\0" * 8)
    _safetensors(case("st_not_json.safetensors", "safetensors", r"not valid JSON"), b"{not json}", b"")

    # -- model directories: index files, shards, configs ----------------------------------------
    def model_dir(name, reader, match):
        d = case(name, reader, match)
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"model_type": "xlm-roberta"}))
        return d

    def shard(d, fname, tensors):
        header, data = {}, b""
        for k, values in tensors.items():
            header[k] = {"dtype": "F32", "shape": [len(values)], "data_offsets": [len(data), len(data) + 4 * len(values)]}
            data += f32(*values)
        _safetensors(d / fname, header, data)

    def index(d, weight_map, name="model.safetensors.index.json"):
        (d / name).write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))

    outside = out / "outside.safetensors"
    shard(out, "outside.safetensors", {"w": [1.0]})
    d = model_dir("dir_index_dotdot", "dir", r"mapped to '\.\./outside\.safetensors', which is not a plain relative")
    index(d, {"w": "../outside.safetensors"})
    d = model_dir("dir_index_absolute", "dir", r"which is not a plain relative file name")
    index(d, {"w": str(outside)})
    d = model_dir("dir_index_symlink_escape", "dir", r"resolves to .*outside the model directory")
    os.symlink(outside, d / "model-00001-of-00001.safetensors")
    index(d, {"w": "model-00001-of-00001.safetensors"})
    d = model_dir("dir_index_missing_shard", "dir", r"shard 'model-00002-of-00002\.safetensors' .* does not exist")
    shard(d, "model-00001-of-00002.safetensors", {"w": [1.0]})
    index(d, {"w": "model-00001-of-00002.safetensors", "v": "model-00002-of-00002.safetensors"})
    d = model_dir("dir_index_wrong_shard", "dir", r"tensor 'v' should be in model-00001-of-00002\.safetensors but is in model-00002")
    shard(d, "model-00001-of-00002.safetensors", {"w": [1.0]})
    shard(d, "model-00002-of-00002.safetensors", {"v": [1.0]})
    index(d, {"w": "model-00001-of-00002.safetensors", "v": "model-00001-of-00002.safetensors",
              "x": "model-00002-of-00002.safetensors"})
    d = model_dir("dir_index_duplicate_tensor", "dir", r"tensor 'w' is in both")
    shard(d, "model-00001-of-00002.safetensors", {"w": [1.0]})
    shard(d, "model-00002-of-00002.safetensors", {"w": [2.0]})
    index(d, {"w": "model-00001-of-00002.safetensors", "x": "model-00002-of-00002.safetensors"})
    d = model_dir("dir_index_not_json", "dir", r"not a valid JSON index")
    (d / "pytorch_model.bin.index.json").write_text("{'weight_map': }")
    d = model_dir("dir_index_no_weight_map", "dir", r"non-empty 'weight_map'")
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": ["a"]}))
    d = model_dir("dir_index_bin_dotdot", "dir", r"which is not a plain relative")
    index(d, {"w": "../../etc/passwd"}, name="pytorch_model.bin.index.json")
    d = model_dir("dir_no_weights", "dir", r"no weight file found")
    d = model_dir("dir_tf1_only", "dir", r"model\.ckpt\.index \(a TensorFlow 1 checkpoint\)")
    (d / "model.ckpt.index").write_bytes(b"\0")

    d = model_dir("config_not_json", "convert", r"config\.json: not valid JSON")
    (d / "config.json").write_text("{hidden_size: 32")
    shard(d, "model.safetensors", {"w": [1.0]})
    d = model_dir("config_not_object", "convert", r"config\.json: expected a JSON object")
    (d / "config.json").write_text("[1, 2]")
    shard(d, "model.safetensors", {"w": [1.0]})
    d = model_dir("config_not_json_for_model", "config", r"not valid JSON")
    (d / "config.json").write_bytes(b"\xff\xfe{")
    d = model_dir("config_wrong_types", "config", r"hidden_size")
    (d / "config.json").write_text(json.dumps({"model_type": "xlm-roberta", "hidden_size": "big"}))
    return cases


def write_keras_file(path):
    """A small file in the layout Keras save_weights writes (HF's TF save_pretrained uses it): root
    attribute layer_names, a group per layer with weight_names, nested groups down to each dataset."""
    import h5py
    import numpy as np
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"roberta", b"lm_head"]
        for layer, names in (("roberta", ["m/roberta/pooler/dense/kernel:0", "m/roberta/pooler/dense/bias:0"]),
                             ("lm_head", ["m/lm_head/bias:0"])):
            group = f.create_group(layer)
            group.attrs["weight_names"] = [n.encode() for n in names]
            for n in names:
                shape = (3, 4) if "kernel" in n else (4,)
                group.create_dataset(n, data=np.arange(np.prod(shape), dtype="f4").reshape(shape))
    return Path(path).read_bytes()


def make_h5_cases(out):
    """TF .h5 files that read outside themselves or lie about sizes (needs h5py to write)."""
    import h5py
    import numpy as np
    out = Path(out)
    cases = []

    def keras_file(name, fill):
        path = out / name / "tf_model.h5"
        path.parent.mkdir(parents=True)
        with h5py.File(path, "w") as f:
            f.attrs["layer_names"] = [b"roberta"]
            g = f.create_group("roberta")
            g.attrs["weight_names"] = [b"m/roberta/pooler/dense/bias:0"]
            fill(f, g)
        return path.parent

    secret = out / "secret.bin"
    secret.write_bytes(b"\x01" * 64)
    cases.append(("h5_external_storage", keras_file("h5_external_storage", lambda f, g: g.create_dataset(
        "m/roberta/pooler/dense/bias:0", shape=(16,), dtype="f4", external=[(str(secret), 0, 64)])),
        "dir", r"reads data from other files"))
    other = out / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("m/roberta/pooler/dense/bias:0", data=np.ones(4, "f4"))
    cases.append(("h5_external_link", keras_file("h5_external_link", lambda f, g: g.__setitem__(
        "m", h5py.ExternalLink(str(other), "m"))), "dir", r"reached through a ExternalLink link"))
    cases.append(("h5_huge_dataset", keras_file("h5_huge_dataset", lambda f, g: g.create_dataset(
        "m/roberta/pooler/dense/bias:0", shape=(2**20, 2**20), dtype="f4", chunks=(1, 1024))),
        "dir", r"claims shape \(1048576, 1048576\)"))
    cases.append(("h5_missing_weight", keras_file("h5_missing_weight", lambda f, g: None),
                  "dir", r"weight 'm/roberta/pooler/dense/bias:0' is missing"))
    d = out / "h5_not_hdf5"
    d.mkdir()
    (d / "tf_model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    cases.append(("h5_not_hdf5", d, "dir", r"not a readable HDF5 file"))
    return [(n, p, r, m) for n, p, r, m in cases]


def make_msgpack_cases(out):
    """Flax .msgpack files whose array records lie (needs msgpack to write)."""
    import msgpack
    out = Path(out)
    cases = []

    def flax_file(name, tree, match):
        d = out / name
        d.mkdir()
        (d / "flax_model.msgpack").write_bytes(tree if isinstance(tree, bytes) else msgpack.packb(tree))
        cases.append((name, d, "dir", match))

    def record(shape, dtype, raw):
        return msgpack.ExtType(1, msgpack.packb((shape, dtype, raw), use_bin_type=True))

    flax_file("mp_huge_shape", {"w": {"bias": record([2**40, 2**20], "float32", b"\0" * 8)}},
              r"holds 8 bytes, not 4611686018427387904")
    flax_file("mp_object_dtype", {"w": {"bias": record([1], "object", b"\0" * 8)}}, r"dtype 'object'")
    flax_file("mp_unknown_ext", {"w": {"bias": msgpack.ExtType(42, b"x")}}, r"extension type 42")
    flax_file("mp_not_a_map", [1, 2, 3], r"expected a nested map")
    flax_file("mp_leaf_not_array", {"w": {"bias": "text"}}, r"is a str, not an array")
    flax_file("mp_truncated", msgpack.packb({"w": {"bias": record([2], "float32", b"\0" * 8)}})[:-5],
              r"not a valid msgpack file")
    flax_file("mp_bad_chunks", {"w": {"kernel": {"__msgpack_chunked_array__": True, "shape": {"0": 9},
                                                 "chunks": {"0": record([2], "float32", b"\0" * 8)}}}},
              r"does not add up to shape \[9\]")
    return cases


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: python tools/make_hostile_corpus.py OUT_DIR")
    cases = make_corpus(argv[1])
    for extra in (make_h5_cases, make_msgpack_cases):
        try:
            cases += extra(argv[1])
        except ImportError as e:
            print(f"skipped {extra.__name__}: {e}")
    for name, path, reader, match in cases:
        print(f"{reader:12s} {name:40s} expects /{match}/")


if __name__ == "__main__":
    main(sys.argv)
