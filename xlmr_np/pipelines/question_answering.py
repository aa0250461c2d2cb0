"""question-answering: the likeliest answer spans of a context, with windows over long contexts.

Reference: transformers 4.57.6 `pipelines/question_answering.py` with a fast tokenizer (the pipeline was
removed in the 5.x line), `QuestionAnsweringPipeline.preprocess` and `postprocess`.
- Features: `<s> question </s></s> context-window </s>`, the context cut into windows of at most
  `max_seq_len` tokens (default min(model max, 384)) overlapping by `doc_stride` (default
  min(max_seq_len // 2, 128)).
- Per window: logits outside the context (question, specials, padding) are set to -10000 except `<s>`;
  start and end get a softmax each; the null score start[0] * end[0] is kept (minimum over windows) when
  `handle_impossible_answer`, then `<s>` is zeroed; span score = start[s] * end[e] for s <= e < s +
  max_answer_len; the best `top_k` (top_k * 2 + 10 with align_to_words) spans inside the context are kept.
- Spans become characters: with `align_to_words` (default) the span grows to the whole words of its first and
  last token — "words" as the fast tokenizer's Metaspace pre-tokenizer cuts them: a new word starts at each
  piece that begins with "▁", and a word's span runs from its first to its last piece *in the window*
  (a word cut by the window edge is cut too), including the space before it (" Berlin." rather than
  "Berlin.", as HF does with this tokenizer); otherwise the tokens' own offsets.
- An answer whose text equals (case-insensitively) one already found adds its score to that one.
- Results sorted by score, top_k kept; one answer is returned as a dict, several as a list.

Shape legend: T tokens of a window.
"""
from __future__ import annotations

import numpy as np

from ..core import heads
from ..text import SPIECE_UNDERLINE
from .base import Pipeline, PipelineError, host


class QuestionAnsweringPipeline(Pipeline):
    task = "question-answering"
    head = "question_answering"
    OPTIONS = {"top_k": 1, "doc_stride": None, "max_answer_len": 15, "max_seq_len": None,
               "max_question_len": 64, "handle_impossible_answer": False, "align_to_words": True}

    def check_config(self, config):
        if config.num_labels != 2:
            raise PipelineError(f"question answering needs a head with 2 outputs (start, end logits); this "
                                f"config has {config.num_labels} labels")

    def __call__(self, *args, question=None, context=None, **kwargs):
        """Answer `question` from `context` (each a string or a list), or pass {"question", "context"} dicts."""
        opts = self.options(kwargs, self.OPTIONS)
        examples = self.examples(args, question, context)
        top_k, max_answer_len = opts["top_k"], opts["max_answer_len"]
        for name, value in (("top_k", top_k), ("max_answer_len", max_answer_len)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PipelineError(f"{name} parameter should be >= 1 (got {value!r})")
        max_seq_len = opts["max_seq_len"] or min(self.max_tokens, 384)
        if max_seq_len > self.max_tokens:
            raise PipelineError(f"max_seq_len={max_seq_len} is longer than the model accepts ({self.max_tokens})")
        doc_stride = opts["doc_stride"] if opts["doc_stride"] is not None else min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise PipelineError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})")
        features, owner = [], []
        for i, (q, c) in enumerate(examples):
            for feature in self.features(q, c, max_seq_len, doc_stride, i):
                features.append(feature)
                owner.append(i)

        def compute(ids, mask, rows):
            start, end = heads.question_answering(self.params, self.config, self.hidden_states(ids, mask))  # [B, T]
            start, end = host(start).astype(np.float32), host(end).astype(np.float32)
            return [(start[r, :len(features[row]["input_ids"])], end[r, :len(features[row]["input_ids"])])
                    for r, row in enumerate(rows)]

        logits = self.run_batches([f["input_ids"] for f in features], compute)
        windows = [[] for _ in examples]  # one pass over the features: linear in their number
        for feature, window_logits, example in zip(features, logits, owner):
            windows[example].append((feature, window_logits))
        results = [self.answers(c, mine, top_k, max_answer_len, opts["handle_impossible_answer"],
                                opts["align_to_words"]) for (_, c), mine in zip(examples, windows)]
        return results[0] if len(results) == 1 else results

    def examples(self, args, question, context):
        """[(question, context)] from keywords, two positional strings, or {"question", "context"} dicts."""
        if args:
            if question is not None or context is not None:
                raise PipelineError("pass the question and context either positionally or as keywords, not both")
            if len(args) == 2 and all(isinstance(a, str) for a in args):
                question, context = args
            else:
                items = args[0] if len(args) == 1 else list(args)
                items = [items] if isinstance(items, dict) else list(items)
                pairs = []
                for item in items:
                    if not isinstance(item, dict) or "question" not in item or "context" not in item:
                        raise PipelineError("You need to provide a dictionary with keys {question:..., context:...}")
                    pairs.append((item["question"], item["context"]))
                return [self.check_pair(q, c) for q, c in pairs]
        if question is None or context is None:
            raise PipelineError("question answering needs both a question and a context")
        if isinstance(question, list) and isinstance(context, str):
            return [self.check_pair(q, context) for q in question]
        if isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise PipelineError("Questions and contexts don't have the same lengths")
            return [self.check_pair(q, c) for q, c in zip(question, context)]
        if isinstance(question, str) and isinstance(context, str):
            return [self.check_pair(question, context)]
        raise PipelineError("question and context must be strings or lists of strings")

    @staticmethod
    def check_pair(question, context):
        for name, value in (("question", question), ("context", context)):
            if not isinstance(value, str):
                raise PipelineError(f"`{name}` must be a string, got {type(value).__name__}")
            if not value:
                raise PipelineError(f"`{name}` cannot be empty")
        return question, context

    # --- features ------------------------------------------------------------------------------------------
    def features(self, question, context, max_seq_len, doc_stride, index):
        """One feature per context window: ids, p_mask (1 = cannot be in the answer), offsets, word spans."""
        tok = self.tokenizer
        question_len = len(tok(question, add_special_tokens=False, verbose=False)["input_ids"])
        room = max_seq_len - question_len - tok.num_special_tokens_to_add(pair=True)
        if room <= doc_stride:
            raise PipelineError(
                f"example {index}: the question takes {question_len} tokens, which leaves {max(room, 0)} of "
                f"max_seq_len={max_seq_len} for each context window, not more than doc_stride={doc_stride}; "
                f"shorten the question, raise max_seq_len or lower doc_stride")
        enc = tok(question, context, truncation="only_second", max_length=max_seq_len, stride=doc_stride,
                  return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True,
                  verbose=False)
        word_of = context_words(tok, context)
        features = []
        for w in range(len(enc["input_ids"])):
            ids = list(enc["input_ids"][w])
            special = enc["special_tokens_mask"][w]
            # sequence ids: the question is the first run of non-special tokens, the context the second
            first_sep = next(i for i in range(1, len(ids)) if special[i])
            in_context = [i > first_sep and not special[i] for i in range(len(ids))]
            p_mask = [0 if ctx else 1 for ctx in in_context]
            for i, token in enumerate(ids):  # <s> stays selectable: some models point there for "no answer"
                if token == tok.cls_token_id:
                    p_mask[i] = 0
            offsets = [tuple(o) for o in enc["offset_mapping"][w]]
            word_ids = [word_of.get(offsets[i]) if in_context[i] else None for i in range(len(ids))]
            features.append({"input_ids": ids, "p_mask": np.array(p_mask), "offsets": offsets,
                             "words": word_spans(word_ids, offsets)})
        return features

    # --- answers -------------------------------------------------------------------------------------------
    def answers(self, context, features, top_k, max_answer_len, handle_impossible, align_to_words):
        min_null_score = 1000000.0
        answers = {}  # answer text, lowercased -> its answer: equal texts merge in constant time
        pre_top_k = top_k * 2 + 10 if align_to_words else top_k  # some candidates may merge when aligned to words
        for feature, (start, end) in features:
            starts, ends, scores, min_null_score = select_spans(
                start, end, feature["p_mask"], min_null_score, pre_top_k, handle_impossible, max_answer_len)
            for s, e, score in zip(starts, ends, scores):
                first, last = feature["offsets"][s], feature["offsets"][e]
                if align_to_words and feature["words"][s] is not None and feature["words"][e] is not None:
                    begin, stop = feature["words"][s][0], feature["words"][e][1]
                else:
                    begin, stop = first[0], last[1]
                text = context[begin:stop]
                same = answers.get(text.lower())
                if same is not None:
                    same["score"] += float(score)
                else:
                    answers[text.lower()] = {"score": float(score), "start": int(begin), "end": int(stop),
                                             "answer": text}
        answers = list(answers.values())  # in the order found, as HF's list (the sort below is stable)
        if handle_impossible:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def select_spans(start, end, p_mask, min_null_score, top_k, handle_impossible, max_answer_len):
    """(starts, ends, scores, min_null_score) of the best spans of one window (HF select_starts_ends)."""
    allowed = 1 - p_mask  # [T]; the window is unpadded, so the attention mask adds nothing
    start = np.where(allowed == 0, -10000.0, start)
    end = np.where(allowed == 0, -10000.0, end)
    start = np.exp(start - start.max())
    start = start / start.sum()
    end = np.exp(end - end.max())
    end = end / end.sum()
    if handle_impossible:
        min_null_score = min(min_null_score, float(start[0] * end[0]))
    start[0] = end[0] = 0.0
    outer = start[:, None] * end[None, :]  # [T, T]: score of span (s, e)
    candidates = np.tril(np.triu(outer), max_answer_len - 1)  # s <= e < s + max_answer_len
    flat = candidates.ravel()
    if top_k == 1:
        best = np.array([np.argmax(flat)])
    elif len(flat) < top_k:
        best = np.argsort(-flat)
    else:
        best = np.argpartition(-flat, top_k)[:top_k]
        best = best[np.argsort(-flat[best])]
    starts, ends = np.unravel_index(best, candidates.shape)
    # HF's np.isin(starts, mask.nonzero()) on a [1, T] mask also admits index 0 (the row index); <s> has
    # probability 0 by now, so only the context positions can carry a score: keep HF's test as it acts.
    permitted = set(np.flatnonzero(allowed).tolist()) | {0}
    keep = np.array([s in permitted and e in permitted for s, e in zip(starts, ends)], dtype=bool)
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[starts, ends], min_null_score


def context_words(tokenizer, context):
    """Token offsets of the context -> the index of the word the token belongs to.

    Words as the fast tokenizer's Metaspace(split=True) pre-tokenizer makes them: each piece beginning with
    "▁" starts a word (an <unk> belongs to the word of the "▁" before it, as in the fast tokenizer).
    """
    enc = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    word_of, word = {}, -1
    for piece, (s, e) in zip(pieces, enc["offset_mapping"]):
        if word < 0 or piece.startswith(SPIECE_UNDERLINE):
            word += 1
        word_of.setdefault((s, e), word)
    return word_of


def word_spans(word_ids, offsets):
    """Per token, the character span of its word *within this window* (HF's Encoding.word_to_chars on the
    window: from the word's first token here to its last token here); None outside the context."""
    first, last = {}, {}
    for i, word in enumerate(word_ids):
        if word is not None:
            first.setdefault(word, offsets[i][0])
            last[word] = offsets[i][1]
    return [None if word is None else (first[word], last[word]) for word in word_ids]
