"""The few fields of a SentencePiece model file (`sentencepiece_model.proto`, a protobuf `ModelProto`) we read.

The file is a protobuf message; the `sentencepiece` package ships `sentencepiece_model_pb2`, but that needs the
`protobuf` package, which xlmr_np does not depend on.  The wire format is simple enough to read here: each field
is a varint key (field number << 3 | wire type) followed by a varint (type 0), 8 bytes (type 1), a
length-prefixed blob (type 2) or 4 bytes (type 5).  Fields used (numbers from sentencepiece_model.proto):

- ModelProto: 1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec;
- SentencePiece: 1 piece (string), 2 score (float), 3 type (1 normal, 2 unknown, 3 control, 4 user defined,
  5 unused, 6 byte);
- TrainerSpec: 3 model_type (1 unigram, 2 bpe, 3 word, 4 char), 35 byte_fallback, 40 unk_id, 41 bos_id,
  42 eos_id, 43 pad_id, 45-48 unk/bos/eos/pad piece;
- NormalizerSpec: 1 name, 2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
  5 escape_whitespaces.

`write_model_proto` writes the same subset back (tokenizer.json checkpoints, files.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Tuple

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of every field of one message: ints for varints, bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(data, pos)
            value, pos = data[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} in a sentencepiece model")
        yield number, wire, value


@dataclass
class ModelInfo:
    """What xlmr_np reads from a model file besides what `SentencePieceProcessor` answers."""

    normalizer_name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    model_type: int = 1
    byte_fallback: bool = False
    trainer: Dict[int, object] = field(default_factory=dict)


def read_model_info(proto: bytes) -> ModelInfo:
    """The normalizer and trainer settings of a serialized ModelProto (defaults as in the .proto file)."""
    info = ModelInfo()
    for number, _, value in fields(proto):
        if number == 2:
            for n, _, v in fields(value):
                info.trainer[n] = v
                if n == 3:
                    info.model_type = v
                elif n == 35:
                    info.byte_fallback = bool(v)
        elif number == 3:
            for n, _, v in fields(value):
                if n == 1:
                    info.normalizer_name = v.decode("utf-8")
                elif n == 2:
                    info.precompiled_charsmap = bytes(v)
                elif n == 3:
                    info.add_dummy_prefix = bool(v)
                elif n == 4:
                    info.remove_extra_whitespaces = bool(v)
                elif n == 5:
                    info.escape_whitespaces = bool(v)
    return info


# ---------------------------------------------------------------------------------------------- writing

def _put_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _put_varint(number << 3 | wire)


def _blob(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _put_varint(len(data)) + data


def _int(number: int, value: int) -> bytes:
    return _key(number, 0) + _put_varint(value & 0xFFFFFFFFFFFFFFFF)


def _float(number: int, value: float) -> bytes:
    return _key(number, 5) + struct.pack("<f", value)


def write_model_proto(pieces: List[Tuple[str, float, int]], model_type: int, unk_id: int, bos_id: int,
                      eos_id: int, pad_id: int, byte_fallback: bool, normalizer_name: str,
                      precompiled_charsmap: bytes, add_dummy_prefix: bool = True,
                      remove_extra_whitespaces: bool = True, unk_piece: str = "<unk>") -> bytes:
    """A serialized ModelProto with these pieces ((piece, score, type) each) and settings; `unk_piece` names
    the unknown piece (sentencepiece's `unk_id()` looks it up by that name)."""
    out = bytearray()
    for piece, score, kind in pieces:
        body = _blob(1, piece.encode("utf-8")) + _float(2, score)
        if kind != NORMAL:
            body += _int(3, kind)
        out += _blob(1, body)
    trainer = (_int(3, model_type) + _int(4, len(pieces)) + _int(35, int(byte_fallback)) + _int(40, unk_id)
               + _int(41, bos_id) + _int(42, eos_id) + _int(43, pad_id) + _blob(45, unk_piece.encode("utf-8")))
    out += _blob(2, trainer)
    normalizer = (_blob(1, normalizer_name.encode("utf-8")) + _blob(2, precompiled_charsmap)
                  + _int(3, int(add_dummy_prefix)) + _int(4, int(remove_extra_whitespaces)) + _int(5, 1))
    out += _blob(3, normalizer)
    return bytes(out)
