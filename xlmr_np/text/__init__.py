"""xlmr_np.text: XLM-RoBERTa's SentencePiece tokenizer with Hugging Face's API.

Equal to HF transformers 4.57.6's slow `XLMRobertaTokenizer` (`models/xlm_roberta/tokenization_xlm_roberta.py`
on `tokenization_utils.py` and `tokenization_utils_base.py`); docs/tokenizer.md says how that is checked.
One module per idea, each naming the HF functions it follows:

    tokenizer.py     XLMRobertaTokenizer: the state (spm model, added tokens, lookups) and the public API
    inputs.py        __call__'s inputs checked and sorted into (first, second) examples
    init_options.py  the constructor's keywords: settings, init_kwargs, what save_pretrained writes back
    added_tokens.py  AddedToken, cutting text on added tokens
    special_tokens.py the special-token attributes and ids, settable
    vocab.py         len / get_vocab / ids of added tokens as HF counts them; add_tokens, add_special_tokens
    pieces.py        text to spm pieces and model ids, one sentencepiece call per batch; SPIECE_UNDERLINE
    offsets.py       character offsets of every token, the whole path step by step
    fast_offsets.py  HF fast's normaliser rebuilt from the model's charsmap, with each character's span
    spm_proto.py     the few fields of a .model file (protobuf) read and written without protobuf
    fairseq_ids.py   the fairseq id mapping (spm id k -> k + 1, <mask> = len(spm) + 1, ...) for any model
    model_inputs.py  tokens or ids as inputs (encode_plus), batch items, truncate_sequences
    pad.py           tokenizer.pad: padding encodings made earlier
    tokenizer_json.py a SentencePiece model rebuilt from a tokenizer.json-only directory
    prepare.py       per example: truncate, add <s> </s>, then pad and collate; fast-tokenizer overflow windows
    batching.py      truncation plans, padding, numpy conversion, BatchEncoding
    decoding.py      ids back to text
    files.py         sentencepiece.bpe.model and the JSON files: from_pretrained / save_pretrained
"""

from .added_tokens import AddedToken
from .batching import BatchEncoding
from .pieces import SPIECE_UNDERLINE
from .tokenizer import XLMRobertaTokenizer

__all__ = ["XLMRobertaTokenizer", "AddedToken", "BatchEncoding", "SPIECE_UNDERLINE"]
