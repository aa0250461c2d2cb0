"""XLMRobertaTokenizer: text to XLM-R input ids, on the `sentencepiece` package.

Reference: Hugging Face transformers 4.57.6, the *slow* (SentencePiece-backed) tokenizer,
`models/xlm_roberta/tokenization_xlm_roberta.py` (`XLMRobertaTokenizer`) on top of `tokenization_utils.py`
(`PreTrainedTokenizer`: added-token splitting, decode) and `tokenization_utils_base.py`
(`PreTrainedTokenizerBase`: `__call__`, padding, truncation, `from_pretrained` / `save_pretrained`).  Ids,
masks and decodes equal HF's for the same model file.  This class holds the tokenizer's state (the spm
model, the added tokens and the lookups built from them) and composes the modules of xlmr_np/text/:

How text becomes ids
1. Added tokens written in the text (`<s>`, `</s>`, `<pad>`, `<unk>`, `<mask>` and any extra added tokens)
   are cut out first, leftmost-longest.  An added token with `lstrip` (`<mask>`) swallows the whitespace on
   its left, one with `rstrip` the whitespace on its right (added_tokens.py).
2. Every piece of text between them is encoded by SentencePiece on its own, so each gets its own dummy-prefix
   `▁` (spm's nmt_nfkc normalisation, whitespace handling and Viterbi segmentation are sentencepiece's);
   all pieces of a call go to sentencepiece at once (pieces.py).
3. Fairseq id mapping: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, spm piece k>=3 -> k+1, spm's unknown
   (id 0) -> 3, `<mask>` = len(spm)+1.  So `len(tok)` = spm size + 2 (fairseq_ids.py).
4. Truncation, the special-token layout `<s> A </s>` / `<s> A </s></s> B </s>`, padding and arrays
   (prepare.py on batching.py); the call's inputs are checked first (inputs.py).

Offsets (`return_offsets_mapping=True`; the slow HF tokenizer cannot return them) are HF's *fast*
tokenizer's: each text piece is normalised as `XLMRobertaTokenizerFast` does, from the model's own
precompiled charsmap, keeping each character's span, and SentencePiece's pieces are laid over it; an added
token spans its match plus the whitespace it swallowed; special and padding tokens get (0, 0) (offsets.py,
step by step; fast_offsets.py; docs/tokenizer.md has the measurements).  Asking for offsets together
with `return_overflowing_tokens` gives the fast tokenizer's layout (one row per window of `stride` overlap, plus `overflow_to_sample_mapping`), which the
question-answering and NER recipes expect; without offsets overflow follows the slow tokenizer
(`overflowing_tokens`, `num_truncated_tokens`).

Ids back to text: decoding.py.  Files (sentencepiece.bpe.model, tokenizer_config.json, ...): files.py.

Deliberate differences from HF: non-string inputs raise TypeError naming their position in the batch;
a missing or corrupt model file raises an error naming the path; `max_length` smaller than the special
tokens and `stride >= max_length` raise ValueError (HF logs an error or silently returns odd windows);
only `return_tensors=None|"np"`.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .added_tokens import AddedToken, added_token_pattern, split_on_added_tokens
from .batching import (VERY_LARGE_INTEGER, BatchEncoding, PadOptions, layout_with_specials, num_special_tokens,
                       resolve_strategies)
from .decoding import clean_up_tokenization, join_tokens, tokens_to_string
from .fast_offsets import FastNormalizer
from .fairseq_ids import (FAIRSEQ_OFFSET, base_id_to_token, base_token_to_id, base_vocab_size, fairseq_token_ids,
                          spm_to_model_table)
from .init_options import apply_init_kwargs, saved_init_kwargs
from .special_tokens import SPECIAL_TOKEN_ATTRIBUTES, SpecialTokensMixin
from .vocab import add_special_tokens, added_encoder_of, get_vocab, register_tokens, vocab_key_count
from .files import (ADDED_TOKENS_FILE, SPECIAL_TOKENS_MAP_FILE, TOKENIZER_CONFIG_FILE, VOCAB_FILE, load_sentencepiece,
                    read_pretrained, save_vocabulary, sentencepiece_from_proto, special_tokens_map_json,
                    tokenizer_config_json, write_json)
from .inputs import check_call_arguments, check_text, collect_examples, returned_fields, to_python
from .pad import pad_encodings
from .pieces import encode_texts, flatten_examples, regroup_examples, spm_pieces
from .model_inputs import input_ids_of, split_batch_items, truncate_sequences
from .prepare import (EncodeOptions, check_truncation_request, finish_batch, finish_single, prepare_example,
                      windowed_features)

# the name it had before xlmr_np/text/ existed (logging configs, tests' caplog); batching.py logs there too
logger = logging.getLogger("xlmr_np.tokenizer")


class XLMRobertaTokenizer(SpecialTokensMixin):
    """XLM-RoBERTa's SentencePiece tokenizer with HF's API (see the module docstring)."""

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "attention_mask"]
    is_fast = False

    def __init__(
        self,
        vocab_file,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        sp_model_kwargs: Optional[dict] = None,
        **kwargs,
    ):
        """HF's signature: the special tokens, `sp_model_kwargs`, and keywords of `PreTrainedTokenizerBase`
        (model_max_length, padding_side, truncation_side, clean_up_tokenization_spaces, split_special_tokens,
        additional_special_tokens, added_tokens_decoder, model_input_names, name_or_path, ...).  Any other
        keyword (`keep_accents`, which HF accepts and ignores for XLM-R, ...) is kept in `init_kwargs` and
        written back by `save_pretrained`, as HF does (init_options.py)."""
        # <mask> behaves like a word: it takes the space before it (HF `XLMRobertaTokenizer.__init__`)
        if isinstance(mask_token, str):
            mask_token = AddedToken(mask_token, lstrip=True, special=True)
        self.sp_model_kwargs = {} if sp_model_kwargs is None else sp_model_kwargs
        self.vocab_file = os.fspath(vocab_file)
        self.sp_model = load_sentencepiece(self.vocab_file, self.sp_model_kwargs)
        self.fairseq_offset = FAIRSEQ_OFFSET
        self.fairseq_tokens_to_ids = fairseq_token_ids(self.sp_model.get_piece_size())
        self.fairseq_ids_to_tokens = {i: t for t, i in self.fairseq_tokens_to_ids.items()}
        self._warned = set()  # one-time warnings already given (HF's deprecation_warnings)

        specials = dict(zip(SPECIAL_TOKEN_ATTRIBUTES, (bos_token, eos_token, unk_token, sep_token, pad_token,
                                                       cls_token, mask_token)))
        added_tokens_decoder = kwargs.pop("added_tokens_decoder", None) or {}
        self.init_kwargs = apply_init_kwargs(self, dict(specials, sp_model_kwargs=self.sp_model_kwargs, **kwargs))
        self._special = {}
        for attr, value in specials.items():
            if value is not None and not isinstance(value, (str, AddedToken)):
                raise TypeError(f"{attr} must be a str or AddedToken, got {type(value).__name__}")
            self._special[attr] = value
        self._additional_special = list(self.init_kwargs.get("additional_special_tokens") or [])

        # Added tokens: from a saved config first, then every special token (HF `PreTrainedTokenizer.__init__`)
        self._added_decoder: Dict[int, AddedToken] = {}
        for index, token in added_tokens_decoder.items():
            self._added_decoder[int(index)] = AddedToken.from_dict(token) if isinstance(token, dict) else token
        # HF keeps the encoder beside the decoder and only ever adds to it (a token whose id another took keeps
        # its entry; that happens where len(tok) is below the last id, vocab.py)
        self._added_encoder = {t.content: i for i, t in self._added_decoder.items()}
        self._refresh_added_tokens()
        # HF passes the AddedToken objects (never found among the encoder's str keys) and the str not yet added
        self._add_tokens([t for t in self.all_special_tokens_extended
                          if isinstance(t, AddedToken) or t not in self._added_encoder], special_tokens=True)

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(cls, pretrained_path, **kwargs) -> "XLMRobertaTokenizer":
        """Load from a directory with sentencepiece.bpe.model (+ tokenizer_config.json, special_tokens_map.json,
        added_tokens.json when present), as HF's `from_pretrained` reads a local directory (files.read_pretrained);
        a path to a .model file is the SentencePiece model itself."""
        path = os.fspath(pretrained_path)
        if os.path.isfile(path) and path.endswith(".model"):
            return cls(path, **kwargs)
        vocab_file, init = read_pretrained(pretrained_path, kwargs)
        return cls(vocab_file, **init)

    def save_vocabulary(self, save_directory, filename_prefix: Optional[str] = None) -> Tuple[str]:
        """Write sentencepiece.bpe.model into `save_directory` (copied, or re-serialised if the file is gone)."""
        return save_vocabulary(self.vocab_file, self.sp_model, save_directory, filename_prefix)

    def save_pretrained(self, save_directory, filename_prefix: Optional[str] = None) -> Tuple[str, ...]:
        """Write tokenizer_config.json, special_tokens_map.json, sentencepiece.bpe.model and (when there are
        added tokens past the base vocabulary) added_tokens.json in HF's layout, so that HF's slow and fast
        XLMRobertaTokenizer (and this class) load the directory."""
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise NotADirectoryError(f"save_pretrained needs a directory, {save_directory!r} is a file")
        os.makedirs(save_directory, exist_ok=True)
        prefix = filename_prefix + "-" if filename_prefix else ""
        config = tokenizer_config_json(saved_init_kwargs(self), self._added_decoder, self.special_tokens_map)
        special_map = special_tokens_map_json(self._special, self._additional_special)
        files = (write_json(os.path.join(save_directory, prefix + TOKENIZER_CONFIG_FILE), config),
                 write_json(os.path.join(save_directory, prefix + SPECIAL_TOKENS_MAP_FILE), special_map))
        # HF's PreTrainedTokenizerBase._save_pretrained: the older added_tokens.json with the added tokens at
        # ids >= vocab_size, written only when there are some, its path returned last either way
        added_file = os.path.join(save_directory, prefix + ADDED_TOKENS_FILE)
        added_vocab = {t: i for t, i in self.added_tokens_encoder.items() if i >= self.vocab_size}
        if added_vocab:
            write_json(added_file, added_vocab)
        return files + self.save_vocabulary(save_directory, filename_prefix) + (added_file,)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["sp_model"] = None
        state["_sp_model_proto"] = self.sp_model.serialized_model_proto()
        return state

    def __setstate__(self, state):
        proto = state.pop("_sp_model_proto")
        self.__dict__.update(state)
        self.sp_model = sentencepiece_from_proto(proto, self.sp_model_kwargs)

    def __repr__(self):
        return (f"XLMRobertaTokenizer(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"model_max_length={self.model_max_length}, padding_side={self.padding_side!r}, "
                f"special_tokens={self.special_tokens_map})")

    # ------------------------------------------------------------------ vocabulary and added tokens

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary: spm pieces + `<pad>` + `<mask>` (HF's `vocab_size`)."""
        return base_vocab_size(self.sp_model.get_piece_size())

    def __len__(self) -> int:
        """Distinct tokens of `get_vocab()`, as HF's `len` (vocab.py: a token at two ids counts once)."""
        return self._total_vocab_size

    def get_vocab(self) -> Dict[str, int]:
        return get_vocab(self.sp_model, self._added_decoder)

    @property
    def added_tokens_decoder(self) -> Dict[int, AddedToken]:
        return dict(sorted(self._added_decoder.items()))

    @added_tokens_decoder.setter
    def added_tokens_decoder(self, value: Dict[int, Union[AddedToken, str]]) -> None:
        for index, token in value.items():
            if not isinstance(token, (str, AddedToken)) or not isinstance(index, int):
                raise TypeError(f"added_tokens_decoder maps int ids to str or AddedToken, got {index!r}: {token!r}")
            self._added_decoder[index] = AddedToken(token) if isinstance(token, str) else token
            self._added_encoder[str(token)] = index
        self._refresh_added_tokens()

    @property
    def added_tokens_encoder(self) -> Dict[str, int]:
        return added_encoder_of(self._added_decoder)

    def get_added_vocab(self) -> Dict[str, int]:
        return dict(self._added_encoder)

    def _base_id_to_token(self, index: int) -> str:
        token = base_id_to_token(self.sp_model, index)
        if token is None:
            raise IndexError(f"token id {index} is out of range: this vocabulary has ids 0..{len(self) - 1}")
        return token

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens (str or AddedToken) matched in the text before SentencePiece; returns how many got new
        ids, which follow `len(self)` (HF's `add_tokens`).  Resizing a model's embeddings to `len(tok)` is the
        model's business, not the tokenizer's."""
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        return self._add_tokens(new_tokens, special_tokens=special_tokens)

    def add_special_tokens(self, special_tokens_dict: dict, replace_additional_special_tokens: bool = True) -> int:
        """Set special-token attributes and add their tokens (HF's `add_special_tokens`); returns how many got
        new ids."""
        return add_special_tokens(self, special_tokens_dict, replace_additional_special_tokens)

    def _add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """HF `PreTrainedTokenizer._add_tokens` (vocab.register_tokens), then the lookups rebuilt once."""
        added = register_tokens(self, new_tokens, special_tokens)
        self._refresh_added_tokens()
        return added

    def _special_tokens_changed(self) -> None:
        if "_added_decoder" in self.__dict__:  # not while __init__ sets the attributes
            self._refresh_added_tokens()

    def _refresh_added_tokens(self) -> None:
        """Rebuild what depends on the added tokens: split pattern, length, spm id table."""
        self._added_pattern = added_token_pattern(self._added_encoder)
        self._total_vocab_size = vocab_key_count(self.sp_model, self._added_decoder)
        unk = self._special.get("unk_token")
        self._unk_id = None if unk is None else self._added_encoder.get(str(unk),
                                                                        base_token_to_id(self.sp_model, str(unk)))
        self._spm_to_id = spm_to_model_table(self.sp_model, self._token_to_id, self._added_encoder)

    def _token_to_id(self, token: str) -> Optional[int]:
        """HF `_convert_token_to_id_with_added_voc`: added tokens, then `_convert_token_to_id` (fairseq_ids.py)."""
        if token in self._added_encoder:
            return self._added_encoder[token]
        index = base_token_to_id(self.sp_model, token)
        return self._unk_id if index is None else index

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return num_special_tokens(pair)

    @property
    def max_len_single_sentence(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(False)

    @property
    def max_len_sentences_pair(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(True)

    # ------------------------------------------------------------------ text -> pieces and ids

    def _split_on_added_tokens(self, text: str, split_special_tokens: bool):
        """`text` cut on the added tokens (added_tokens.split_on_added_tokens), or whole if they are not split out."""
        if split_special_tokens:
            return split_on_added_tokens(text, None, self._added_encoder, self._added_decoder)
        return split_on_added_tokens(text, self._added_pattern, self._added_encoder, self._added_decoder)

    def _encode_texts(self, texts: List[str], with_offsets: bool, split_special_tokens: Optional[bool]):
        """Model ids (and offsets into each text) for many texts: split, one spm call, fairseq mapping."""
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        plans = [self._split_on_added_tokens(t, split) for t in texts]
        return encode_texts(self.sp_model, self._spm_to_id, self._token_to_id, texts, plans, with_offsets,
                            self._offsets_normalizer() if with_offsets else None)

    def _offsets_normalizer(self) -> FastNormalizer:
        """The fast tokenizer's normalizer for this model (fast_offsets.py), built on first use."""
        normalizer = self.__dict__.get("_fast_normalizer")
        if normalizer is None:
            normalizer = FastNormalizer.from_proto(self.sp_model.serialized_model_proto())
            self._fast_normalizer = normalizer
        return normalizer

    def _encode_examples(self, examples, with_offsets: bool, split_special_tokens: Optional[bool]):
        """(ids, offsets) of the first and second sequence of every example (None for a missing second)."""
        texts, layout = flatten_examples(examples)
        return regroup_examples(self._encode_texts(texts, with_offsets, split_special_tokens), layout, with_offsets)

    def tokenize(self, text: str, split_special_tokens: Optional[bool] = None) -> List[str]:
        """Text to tokens (spm pieces, added tokens kept whole), as HF's slow `tokenize`."""
        check_text(text, "text")
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        return spm_pieces(self.sp_model, text, self._split_on_added_tokens(text, split), self._added_decoder)

    def convert_tokens_to_ids(self, tokens):
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(t) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        ids = to_python(ids)
        if isinstance(ids, int):
            return self._added_decoder[ids].content if ids in self._added_decoder else self._base_id_to_token(ids)
        special = set(self.all_special_ids) if skip_special_tokens else ()
        tokens = []
        for index in ids:
            index = int(index)
            if index in special:
                continue
            tokens.append(self._added_decoder[index].content if index in self._added_decoder
                          else self._base_id_to_token(index))
        return tokens

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return tokens_to_string(tokens)

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, **kwargs) -> List[int]:
        """One example to a list of ids (HF's `encode`: `encode_plus(...)["input_ids"]`): a str, pre-split
        words with `is_split_into_words=True`, a list of tokens, or a list of ids."""
        return self.encode_plus(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def encode_plus(self, text, text_pair=None, add_special_tokens: bool = True, is_split_into_words: bool = False,
                    **kwargs) -> BatchEncoding:
        """One example to model inputs (HF's `encode_plus`); keywords as for `__call__`.  Text (str, or words
        with `is_split_into_words`) goes through `__call__`; a list of tokens or of ids through
        `prepare_for_model`, as HF's `get_input_ids` turns them into ids."""
        if is_split_into_words or (isinstance(text, str) and (text_pair is None or isinstance(text_pair, str))):
            if not is_split_into_words:
                check_text(text, "text")
            return self(text, text_pair, add_special_tokens=add_special_tokens,
                        is_split_into_words=is_split_into_words, **kwargs)
        if kwargs.get("return_offsets_mapping"):
            raise ValueError("return_offsets_mapping needs text: pass the str to the tokenizer, not tokens or ids")
        ids = input_ids_of(self, text, "text")
        pair_ids = None if text_pair is None else input_ids_of(self, text_pair, "text_pair")
        return self.prepare_for_model(ids, pair_ids, add_special_tokens=add_special_tokens, prepend_batch_axis=True,
                                      **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs, add_special_tokens: bool = True,
                          is_split_into_words: bool = False, **kwargs) -> BatchEncoding:
        """A batch of texts or (text, text_pair) pairs to model inputs (HF's `batch_encode_plus`); keywords as
        for `__call__`.  With `is_split_into_words` an item is a list of words or a pair of such lists."""
        text, text_pair = split_batch_items(batch_text_or_text_pairs, is_split_into_words)
        return self(text, text_pair, add_special_tokens=add_special_tokens, is_split_into_words=is_split_into_words,
                    **kwargs)

    def prepare_for_model(self, ids: List[int], pair_ids: Optional[List[int]] = None, add_special_tokens: bool = True,
                          padding=False, truncation=None, max_length: Optional[int] = None, stride: int = 0,
                          pad_to_multiple_of: Optional[int] = None, padding_side: Optional[str] = None,
                          return_tensors: Optional[str] = None, return_token_type_ids: Optional[bool] = None,
                          return_attention_mask: Optional[bool] = None, return_overflowing_tokens: bool = False,
                          return_special_tokens_mask: bool = False, return_offsets_mapping: bool = False,
                          return_length: bool = False, verbose: bool = True, prepend_batch_axis: bool = False,
                          **kwargs) -> BatchEncoding:
        """Ids (and pair ids) to model inputs: truncated, special tokens added, padded (HF `prepare_for_model`)."""
        if return_offsets_mapping:
            raise ValueError("prepare_for_model has no text to measure offsets on: call the tokenizer on the text "
                             "with return_offsets_mapping=True")
        self._warn_unknown_keywords(kwargs)
        ids = [int(i) for i in to_python(ids)]
        pair_ids = None if pair_ids is None else [int(i) for i in to_python(pair_ids)]
        opts, pad = self._options(add_special_tokens, padding, truncation, max_length, stride, pad_to_multiple_of,
                                  padding_side, return_tensors, return_token_type_ids, return_attention_mask,
                                  return_overflowing_tokens, return_special_tokens_mask, False, return_length,
                                  verbose, any_pair=pair_ids is not None)
        row = self._prepare_rows([((ids, None), None if pair_ids is None else (pair_ids, None))], opts)[0]
        return finish_single(row, pad, opts, return_tensors, prepend_batch_axis)

    def truncate_sequences(self, ids: List[int], pair_ids: Optional[List[int]] = None, num_tokens_to_remove: int = 0,
                           truncation_strategy="longest_first", stride: int = 0):
        """(ids, pair_ids, overflowing_tokens) with `num_tokens_to_remove` tokens cut as the strategy says, on
        the tokenizer's `truncation_side` (HF `truncate_sequences`; batching.truncation_plan)."""
        return truncate_sequences(ids, pair_ids, num_tokens_to_remove, truncation_strategy, stride,
                                  self.truncation_side)

    def pad(self, encoded_inputs, padding=True, max_length: Optional[int] = None,
            pad_to_multiple_of: Optional[int] = None, padding_side: Optional[str] = None,
            return_attention_mask: Optional[bool] = None, return_tensors: Optional[str] = None,
            verbose: bool = True) -> BatchEncoding:
        """Pad encodings made earlier: one, a dict of batched lists, or a list of them (HF `pad`; pad.py)."""
        return pad_encodings(self, encoded_inputs, padding, max_length, pad_to_multiple_of, padding_side,
                             return_attention_mask, return_tensors, verbose)

    # ------------------------------------------------------------------ special-token layout

    def build_inputs_with_special_tokens(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None):
        return layout_with_specials(token_ids_0, token_ids_1, self.cls_token_id, self.sep_token_id)

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens: bool = False):
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("You should not supply a second sequence if the provided sequence of ids is "
                                 "already formatted with special tokens for the model.")
            special = set(self.all_special_ids)
            return [1 if t in special else 0 for t in to_python(token_ids_0)]
        return layout_with_specials([0] * len(token_ids_0), None if token_ids_1 is None else [0] * len(token_ids_1),
                                    1, 1)

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None) -> List[int]:
        """All zeros: XLM-R has no segment embeddings to speak of (type_vocab_size 1)."""
        return [0] * len(layout_with_specials(token_ids_0, token_ids_1, None, None))

    # ------------------------------------------------------------------ decode

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: Optional[bool] = None,
               spaces_between_special_tokens: bool = True) -> str:
        """Ids to text (HF slow `_decode`): pieces joined, `▁` -> space, outer spaces stripped."""
        tokens = self.convert_ids_to_tokens(token_ids, skip_special_tokens=skip_special_tokens)
        if isinstance(tokens, str):
            tokens = [tokens]
        specials = set(self.all_special_tokens)
        # non-special added tokens are decoded apart from the spm pieces (HF "legacy added tokens")
        legacy = set(self._added_encoder) - specials
        legacy |= {t for t in self.additional_special_tokens if self._token_to_id(t) >= self.vocab_size}
        text = join_tokens(tokens, specials, legacy, skip_special_tokens, spaces_between_special_tokens)
        clean = clean_up_tokenization_spaces
        if clean is None:
            clean = self.clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: Optional[bool] = None, **kwargs) -> List[str]:
        return [self.decode(seq, skip_special_tokens=skip_special_tokens,
                            clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs)
                for seq in to_python(sequences)]

    # ------------------------------------------------------------------ __call__

    def __call__(
        self,
        text=None,
        text_pair=None,
        add_special_tokens: bool = True,
        padding=False,
        truncation=None,
        max_length: Optional[int] = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: Optional[int] = None,
        padding_side: Optional[str] = None,
        return_tensors: Optional[str] = None,
        return_token_type_ids: Optional[bool] = None,
        return_attention_mask: Optional[bool] = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        split_special_tokens: Optional[bool] = None,
        **kwargs,
    ) -> BatchEncoding:
        """Tokenize a string, a pair, or a batch of strings/pairs into model inputs (HF's `__call__`).

        Steps: check the inputs (inputs.py), resolve padding/truncation (batching.resolve_strategies), encode
        every text (pieces.py), then per example truncate and add the special tokens, and pad (prepare.py).
        """
        self._warn_unknown_keywords(kwargs)
        examples, batched = collect_examples(text, text_pair, is_split_into_words)
        opts, pad = self._options(add_special_tokens, padding, truncation, max_length, stride, pad_to_multiple_of,
                                  padding_side, return_tensors, return_token_type_ids, return_attention_mask,
                                  return_overflowing_tokens, return_special_tokens_mask, return_offsets_mapping,
                                  return_length, verbose, any_pair=any(b is not None for _, b in examples))
        if batched:
            # HF 4.57.6 quirk kept for identical ids: the slow tokenizer's batch path does not pass the call's
            # split_special_tokens on to `tokenize`, so batches use the tokenizer's own setting
            split_special_tokens = None
        encoded = self._encode_examples(examples, return_offsets_mapping, split_special_tokens)
        if opts.windows:
            return windowed_features(encoded, opts, pad, return_tensors)
        rows = self._prepare_rows(encoded, opts)
        if not batched:
            return finish_single(rows[0], pad, opts, return_tensors)
        return finish_batch(rows, pad, opts, return_tensors)

    def _options(self, add_special_tokens, padding, truncation, max_length, stride, pad_to_multiple_of, padding_side,
                 return_tensors, return_token_type_ids, return_attention_mask, return_overflowing_tokens,
                 return_special_tokens_mask, return_offsets_mapping, return_length, verbose, any_pair: bool):
        """(EncodeOptions, PadOptions) of a call: arguments checked, strategies resolved (batching.py), the
        fields' defaults (inputs.returned_fields), requests that cannot be met refused (prepare.py)."""
        check_call_arguments(return_tensors, padding_side, stride)
        padding, truncation, max_length = resolve_strategies(
            padding, truncation, max_length, pad_to_multiple_of, self.model_max_length, self._warned, verbose)
        return_token_type_ids, return_attention_mask = returned_fields(
            return_token_type_ids, return_attention_mask, add_special_tokens, self.model_input_names)
        opts = EncodeOptions(
            add_special_tokens=add_special_tokens, truncation=truncation, max_length=max_length, stride=stride,
            return_token_type_ids=return_token_type_ids, return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping, return_overflowing_tokens=return_overflowing_tokens,
            return_length=return_length, verbose=verbose, truncation_side=self.truncation_side,
            cls_id=self.cls_token_id, sep_id=self.sep_token_id)
        check_truncation_request(opts, any_pair=any_pair)
        pad = PadOptions(padding=padding, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of,
                         side=padding_side or self.padding_side, return_attention_mask=return_attention_mask,
                         pad_id=self.pad_token_id)
        return opts, pad

    def _warn_unknown_keywords(self, kwargs: dict) -> None:
        """HF's `tokenize` logs keywords it does not know and goes on."""
        if kwargs:
            logger.warning(f"Keyword arguments {kwargs} not recognized.")

    def _prepare_rows(self, encoded, opts: EncodeOptions) -> List[dict]:
        """Every example truncated and laid out with its special tokens, warning once if one is too long."""
        rows = []
        for a, b in encoded:
            row = prepare_example(a, b, opts)
            if opts.max_length is None and opts.verbose:
                self._warn_if_too_long(len(row["input_ids"]))
            rows.append(row)
        return rows

    def _warn_if_too_long(self, length: int) -> None:
        """HF's one-time warning (`PreTrainedTokenizerBase._eventual_warn_about_too_long_sequence`)."""
        if length > self.model_max_length and self.model_max_length != 0 and "too-long" not in self._warned:
            logger.warning(
                "Token indices sequence length is longer than the specified maximum sequence length for this model "
                f"({length} > {self.model_max_length}). Running this sequence through the model will result in "
                "indexing errors")
            self._warned.add("too-long")
