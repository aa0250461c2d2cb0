"""token-classification (NER): a label per token, or entities grouped over tokens and words.

Reference: transformers 4.57.6 `pipelines/token_classification.py` with a *fast* tokenizer (the slow one has
no offsets), `TokenClassificationPipeline.postprocess` and `aggregate`. Per token: softmax over the labels; special tokens skipped;
`word` is the sentencepiece piece and (start, end) its character span in the text.
- "none": every token {"entity", "score", "index", "word", "start", "end"};
- "simple": the same tokens grouped into entities;
- "first" / "average" / "max": tokens first merged into words — a token continues the word unless it starts
  the text or a space sits at/before it (HF's fallback heuristic for tokenizers that are not word-aware,
  which includes XLM-R's Unigram model; an <unk> token always starts a word) — the word's label from its
  first token, its averaged scores, or its most confident token; then grouped;
- grouping: consecutive entities with the same type join unless the newcomer is a B- tag; a group is
  {"entity_group", "score" (mean), "word", "start", "end"}; words and groups join their pieces as the fast
  tokenizer's Metaspace decoder does ("▁" dropped in the first piece, a space elsewhere, no strip), so a
  group can end in a space where the slow tokenizer's convert_tokens_to_string would strip it;
- `ignore_labels` (default ["O"]) are dropped;
- `stride=k` splits a long text into overlapping windows (each up to the model's length, overlapping by k
  tokens); entities of all windows are merged, an overlap keeping the longer entity (at equal length the
  higher score). Without a stride, a long text is truncated (HF does the same, silently; here with a warning).
Scores are NumPy float32 values, as HF returns them.

Shape legend: T tokens, C labels.
"""
from __future__ import annotations

import numpy as np

from ..core import heads
from ..core.ops import softmax  # exp(x - max) / sum, as HF's pipelines
from ..text import SPIECE_UNDERLINE
from .base import Pipeline, PipelineError, as_list, check_text, host

STRATEGIES = ("none", "simple", "first", "average", "max")


class TokenClassificationPipeline(Pipeline):
    task = "token-classification"
    head = "token_classification"
    OPTIONS = {"aggregation_strategy": "none", "ignore_labels": None, "stride": None}

    def __call__(self, inputs, **kwargs):
        """Entities of a text, or a list of entity lists for a list of texts."""
        opts = self.options(kwargs, self.OPTIONS)
        strategy = str(opts["aggregation_strategy"]).lower()
        if strategy not in STRATEGIES:
            raise PipelineError(f"aggregation_strategy must be one of {STRATEGIES}, "
                                f"got {opts['aggregation_strategy']!r}")
        ignore = ["O"] if opts["ignore_labels"] is None else list(opts["ignore_labels"])
        stride = opts["stride"]
        if stride is not None:
            if not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
                raise PipelineError(f"stride must be a non-negative integer, got {stride!r}")
            if stride >= self.max_tokens:
                raise PipelineError(f"`stride` ({stride}) must be less than the model's maximum length "
                                    f"({self.max_tokens}, minus the 2 special tokens)")
            if strategy == "none":
                raise PipelineError('`stride` was provided to process all the text but `aggregation_strategy="none"`'
                                    ', please select another one instead.')
        texts, single = as_list(inputs, "text")
        chunks, owner = [], []  # every window of every text, and which text it belongs to
        for i, text in enumerate(texts):
            check_text(text, f"input {i}")
            for window in self.windows(text, stride):
                chunks.append(window)
                owner.append(i)

        def compute(ids, mask, rows):
            logits = heads.token_classification(self.params, self.config, self.hidden_states(ids, mask))  # [B, T, C]
            logits = host(logits).astype(np.float32)
            return [logits[r, :len(chunks[row]["input_ids"])] for r, row in enumerate(rows)]

        logits = self.run_batches([c["input_ids"] for c in chunks], compute)
        results = [[] for _ in texts]
        counts = [0] * len(texts)
        for chunk, chunk_logits, i in zip(chunks, logits, owner):
            results[i].extend(self.entities(texts[i], chunk, chunk_logits, strategy, ignore))
            counts[i] += 1
        results = [merge_overlapping(r) if n > 1 else r for r, n in zip(results, counts)]
        return results[0] if single else results

    def windows(self, text, stride):
        """Tokenised windows of a text: ids, special-token mask and character offsets."""
        limit = self.max_tokens
        if stride is None:
            enc = self.tokenizer(text, return_special_tokens_mask=True, return_offsets_mapping=True, verbose=False)
            if len(enc["input_ids"]) > limit:
                self.warn_once("truncated", f"a text of {len(enc['input_ids'])} tokens was truncated to "
                                            f"{limit} (as HF does); pass stride=... to cover all of it")
                enc = self.tokenizer(text, truncation=True, max_length=limit, return_special_tokens_mask=True,
                                     return_offsets_mapping=True, verbose=False)
            return [{k: list(enc[k]) for k in ("input_ids", "special_tokens_mask", "offset_mapping")}]
        enc = self.tokenizer(text, truncation=True, max_length=limit, stride=stride,
                             return_overflowing_tokens=True, return_special_tokens_mask=True,
                             return_offsets_mapping=True, verbose=False)
        return [{"input_ids": list(enc["input_ids"][w]), "special_tokens_mask": list(enc["special_tokens_mask"][w]),
                 "offset_mapping": list(enc["offset_mapping"][w])} for w in range(len(enc["input_ids"]))]

    def entities(self, text, chunk, logits, strategy, ignore):
        """The filtered entities of one window."""
        tokens = self.pre_entities(text, chunk, softmax(logits), strategy)  # scores [T, C] per token
        if strategy in ("none", "simple"):
            labelled = [self.labelled(t) for t in tokens]
        else:
            labelled = [self.word_entity(group, strategy) for group in words(tokens)]
        if strategy != "none":
            labelled = self.group(labelled)
        return [e for e in labelled if e.get("entity") not in ignore and e.get("entity_group") not in ignore]

    def pre_entities(self, text, chunk, scores, strategy):
        """One record per non-special token: piece, scores, span, index, and whether it continues a word."""
        tokens = []
        unk = self.tokenizer.unk_token_id
        pieces = self.tokenizer.convert_ids_to_tokens(chunk["input_ids"])
        for index, (token_id, special, (start, end)) in enumerate(
                zip(chunk["input_ids"], chunk["special_tokens_mask"], chunk["offset_mapping"])):
            if special:
                continue
            word = pieces[index]
            is_subword = start > 0 and " " not in text[start - 1:start + 1]
            if token_id == unk:
                word, is_subword = text[start:end], False
            tokens.append({"word": word, "scores": scores[index], "start": int(start), "end": int(end),
                           "index": index, "is_subword": is_subword})
        if strategy in ("first", "average", "max"):
            self.warn_once("fallback", "Tokenizer does not support real words, using fallback heuristic")
        return tokens

    def labelled(self, token):
        best = int(np.argmax(token["scores"]))
        return {"entity": self.config.id2label[best], "score": token["scores"][best], "index": token["index"],
                "word": token["word"], "start": token["start"], "end": token["end"]}

    def word_entity(self, group, strategy):
        """One word from its tokens, labelled by the first / the average / the most confident token."""
        if strategy == "first":
            scores = group[0]["scores"]
        elif strategy == "max":
            scores = max(group, key=lambda t: t["scores"].max())["scores"]
        else:
            scores = np.nanmean(np.stack([t["scores"] for t in group]), axis=0)  # [k, C] -> [C]
        best = int(np.argmax(scores))
        return {"entity": self.config.id2label[best], "score": scores[best],
                "word": metaspace_join([t["word"] for t in group]),
                "start": group[0]["start"], "end": group[-1]["end"]}

    def group(self, entities):
        """Join consecutive entities of the same type (a B- tag always starts a new group)."""
        groups, current = [], []
        for entity in entities:
            if current:
                bi, tag = split_tag(entity["entity"])
                _, last_tag = split_tag(current[-1]["entity"])
                if not (tag == last_tag and bi != "B"):
                    groups.append(self.close(current))
                    current = []
            current.append(entity)
        if current:
            groups.append(self.close(current))
        return groups

    def close(self, members):
        return {"entity_group": members[0]["entity"].split("-", 1)[-1],
                "score": np.mean(np.nanmean([m["score"] for m in members])),
                "word": metaspace_join([m["word"] for m in members]),
                "start": members[0]["start"], "end": members[-1]["end"]}


def metaspace_join(pieces):
    """Pieces -> text as the fast tokenizer's Metaspace decoder joins them (HF's NER uses that decoder):
    "▁" is dropped in the first piece and becomes a space in the others; nothing is stripped."""
    return "".join(p.replace(SPIECE_UNDERLINE, "" if i == 0 else " ") for i, p in enumerate(pieces))


def words(tokens):
    """Consecutive tokens grouped into words: a token that is not a subword starts a new word."""
    groups = []
    for token in tokens:
        if groups and token["is_subword"]:
            groups[-1].append(token)
        else:
            groups.append([token])
    return groups


def split_tag(label):
    """"B-PER" -> ("B", "PER"), "I-PER" -> ("I", "PER"), anything else -> ("I", label)."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def merge_overlapping(entities):
    """Entities of overlapping windows: sorted by start; of two overlapping, the longer (then likelier) wins."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda e: e["start"])
    kept, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                previous = entity
        else:
            kept.append(previous)
            previous = entity
    kept.append(previous)
    return kept
