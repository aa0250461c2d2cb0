"""Train the small multilingual demo checkpoint shipped in models/xlmr-demo/ (dev-only tool).

The model is Hugging Face's own `XLMRobertaForMaskedLM` (transformers 4.57.x) with XLM-R's
config conventions, only smaller. It learns the RoBERTa masked-LM objective on real translated
sentences taken from the gettext message catalogs (`*.mo`) installed under /usr/share/locale.

Stages (each reads the previous stage's files from --workdir, default /tmp/demo_train):

    corpus     read every catalog, clean and deduplicate lines, hold out ~2% by hash
    tokenizer  train a sentencepiece unigram model (XLM-R's special ids and normalisation)
    encode     tokenize with HF's slow XLMRobertaTokenizer, so ids are exactly HF's
    train      MLM training; seeded, checkpoints every --ckpt-minutes, --resume continues
    export     float16 safetensors + tokenizer files into --out (models/xlmr-demo)
    evaluate   held-out masked-token accuracy, fill-mask top-5, baselines -> eval.json, loss_curve.png

    python tools/train_demo_model.py corpus tokenizer encode
    nohup python tools/train_demo_model.py train --total-steps N > /tmp/demo_train/train.log &
    python tools/train_demo_model.py export evaluate

Everything random is drawn from generators seeded by --seed (and the step number), so a run
resumed from a checkpoint follows the same batches and masks as an uninterrupted one.
"""

import argparse
import collections
import glob
import gettext
import hashlib
import html
import json
import os
import re
import time

import numpy as np

LOCALE_ROOT = "/usr/share/locale"
MAX_TOKENS = 128  # tokens per sequence incl. <s> and </s>; positions need MAX_TOKENS + 2
SPM_VOCAB = 12000  # sentencepiece pieces; HF vocab = SPM_VOCAB + 2 (fairseq offset 1, <mask> last)

# Lines carrying program syntax rather than language are dropped, not repaired:
# printf/Python/shell placeholders, command-line options, identifiers and paths.
_PLACEHOLDER = re.compile(
    r"%(\d+\$)?[-+ #0']*(\d+|\*)?(\.(\d+|\*))?(hh|h|ll|l|L|q|j|z|t|I)?[diouxXeEfFgGaAcspnmS]"
    r"|%\(\w+\)|\{[^}]*\}|\$\{?\w|\\[nt]|--\w|\w_\w|\w/\w|::|=>|\.\w{2,4}\b"
)
_TAG = re.compile(r"<[^<>]{1,80}>")
_MNEMONIC_PAREN = re.compile(r"\s*\((_|&)\w\)")  # CJK style accelerators "文件(_F)"
_MNEMONIC = re.compile(r"(?<!\w)[_&](?=\w)")  # GTK "_File", Qt "&File"
_SPACES = re.compile(r"\s+")


def clean_line(line):
    """One catalog line -> a plain sentence, or None when it is markup, code or too short."""
    line = _TAG.sub("", line)
    line = html.unescape(line)
    line = _MNEMONIC_PAREN.sub("", line)
    line = _MNEMONIC.sub("", line)
    line = _SPACES.sub(" ", line).strip()
    if _PLACEHOLDER.search(line) or not (3 <= len(line) <= 400):
        return None
    letters = sum(ch.isalpha() for ch in line)
    if letters < 3 or letters < 0.5 * len(line):
        return None
    return line


def catalog_files():
    return sorted(glob.glob(os.path.join(LOCALE_ROOT, "*", "LC_MESSAGES", "*.mo")))


def read_catalog(path):
    """Return the (msgid, translation) strings of one .mo file, header and contexts removed."""
    with open(path, "rb") as fh:
        trans = gettext.GNUTranslations(fh)
    pairs = []
    for key, value in trans._catalog.items():
        msgid = key[0] if isinstance(key, tuple) else key
        if not msgid:
            continue  # the "" entry is the catalog header
        pairs.append((msgid.split("\x04")[-1], value))  # msgctxt is joined with \x04
    return pairs


def is_heldout(text):
    """Deterministic ~2% split by content hash, stable across runs and machines."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % 50 == 0


def stage_corpus(args):
    seen = {}
    per_lang = collections.Counter()
    domains = collections.Counter()
    skipped = []
    files = catalog_files()
    for path in files:
        lang = path.split(os.sep)[-3]
        domain = os.path.basename(path)[:-3]
        try:
            pairs = read_catalog(path)
        except Exception as exc:  # a few catalogs declare the wrong charset
            skipped.append(f"{path}: {type(exc).__name__}: {exc}")
            continue
        domains[domain] += 1
        for msgid, msgstr in pairs:
            for src_lang, text in (("en", msgid), (lang, msgstr)):
                for line in text.split("\n"):
                    line = clean_line(line)
                    if line is not None and line not in seen:
                        seen[line] = src_lang
                        per_lang[src_lang] += 1
    train, heldout = [], []
    for text, lang in seen.items():
        (heldout if is_heldout(text) else train).append(f"{lang}\t{text}\n")
    os.makedirs(args.workdir, exist_ok=True)
    for name, lines in (("train.tsv", train), ("heldout.tsv", heldout)):
        with open(os.path.join(args.workdir, name), "w", encoding="utf-8") as fh:
            fh.writelines(lines)
    stats = {
        "catalog_files": len(files),
        "catalog_files_skipped": skipped,
        "domains": dict(sorted(domains.items())),
        "languages": len(per_lang),
        "sentences_per_language": dict(per_lang.most_common()),
        "train_sentences": len(train),
        "heldout_sentences": len(heldout),
        "train_chars": sum(len(x) - len(x.split("\t", 1)[0]) - 2 for x in train),
    }
    with open(os.path.join(args.workdir, "corpus_stats.json"), "w") as fh:
        json.dump(stats, fh, indent=1, ensure_ascii=False)
    print(f"corpus: {len(train)} train / {len(heldout)} held-out sentences, "
          f"{len(per_lang)} languages, {len(skipped)} catalogs skipped")


def read_tsv(path):
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n").split("\t", 1) for line in fh]


def stage_tokenizer(args):
    import sentencepiece as spm

    rows = read_tsv(os.path.join(args.workdir, "train.tsv"))
    rng = np.random.default_rng(args.seed)
    pick = rng.permutation(len(rows))[: args.spm_sentences]  # deterministic sample, spm sees all of it
    sample = os.path.join(args.workdir, "spm_input.txt")
    with open(sample, "w", encoding="utf-8") as fh:
        fh.writelines(rows[i][1] + "\n" for i in np.sort(pick))
    spm.SentencePieceTrainer.train(
        input=sample,
        model_prefix=os.path.join(args.workdir, "spm"),
        model_type="unigram",
        vocab_size=SPM_VOCAB,
        normalization_rule_name="nmt_nfkc",
        character_coverage=0.9995,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,  # XLM-R's spm layout: <unk>, <s>, </s>
        input_sentence_size=0,
        num_threads=1,
        max_sentence_length=4096,
        minloglevel=1,
    )
    print("tokenizer:", os.path.join(args.workdir, "spm.model"))


def hf_tokenizer(workdir):
    from transformers import XLMRobertaTokenizer

    return XLMRobertaTokenizer(vocab_file=os.path.join(workdir, "spm.model"), model_max_length=MAX_TOKENS)


def stage_encode(args):
    tok = hf_tokenizer(args.workdir)
    for split in ("train", "heldout"):
        texts = [t for _, t in read_tsv(os.path.join(args.workdir, f"{split}.tsv"))]
        ids, offsets = [], [0]
        t0 = time.time()
        for start in range(0, len(texts), 10000):
            enc = tok(texts[start:start + 10000], truncation=True, max_length=MAX_TOKENS)
            for seq in enc["input_ids"]:
                ids.extend(seq)
                offsets.append(len(ids))
        np.savez(os.path.join(args.workdir, f"{split}_ids.npz"),
                 ids=np.asarray(ids, dtype=np.int32), offsets=np.asarray(offsets, dtype=np.int64))
        print(f"encode {split}: {len(texts)} sentences, {len(ids)} tokens, {time.time() - t0:.0f}s")


def load_encoded(workdir, split):
    data = np.load(os.path.join(workdir, f"{split}_ids.npz"))
    ids, off = data["ids"], data["offsets"]
    return [ids[off[i]:off[i + 1]] for i in range(len(off) - 1)]


def make_batches(lengths, token_budget, seed):
    """Group sequences of similar length so a batch holds at most token_budget tokens (padding included)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(lengths)), lengths))  # by length, random among equals
    batches, start = [], 0
    for end in range(len(order)):
        if (end + 1 - start) * lengths[order[end]] > token_budget and end > start:
            batches.append(order[start:end])
            start = end
    batches.append(order[start:])
    return batches


def pad_batch(seqs, pad_id=1):
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, :len(seq)] = seq
    return ids


def mask_tokens(ids, generator, vocab_size, mask_id, special_max=3, prob=0.15):
    """RoBERTa masking: pick 15% of real tokens; of those 80% <mask>, 10% random, 10% kept."""
    import torch

    maskable = ids > special_max  # <s>=0 <pad>=1 </s>=2 <unk>=3 are never targets
    picked = (torch.rand(ids.shape, generator=generator) < prob) & maskable
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[picked & (roll < 0.8)] = mask_id
    random_ids = torch.randint(special_max + 1, vocab_size - 1, ids.shape, generator=generator)
    swap = picked & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = random_ids[swap]
    return inputs, labels


def build_model(vocab_size, args):
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    config = XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate,
        hidden_act="gelu",
        hidden_dropout_prob=args.dropout,
        attention_probs_dropout_prob=args.dropout,
        max_position_embeddings=MAX_TOKENS + 2,
        type_vocab_size=1,
        initializer_range=0.02,
        layer_norm_eps=1e-5,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
        architectures=["XLMRobertaForMaskedLM"],
    )
    return XLMRobertaForMaskedLM(config)


def mlm_loss(model, inputs, labels, attention_mask):
    """Cross-entropy on masked positions only: the LM head runs on those rows, not on all [B, T]."""
    import torch

    hidden = model.roberta(input_ids=inputs, attention_mask=attention_mask).last_hidden_state  # [B, T, D]
    target = labels != -100
    logits = model.lm_head(hidden[target])  # [N, D] -> [N, V]
    return torch.nn.functional.cross_entropy(logits, labels[target]), logits, labels[target]


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))  # linear decay to zero


def heldout_loss(model, heldout, vocab_size, mask_id, seed, n=2000, budget=4096):
    """MLM loss on a fixed set of held-out sentences with fixed masks (comparable across steps)."""
    import torch

    seqs = heldout[:n]
    gen = torch.Generator().manual_seed(seed + 999)
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in make_batches(np.array([len(s) for s in seqs]), budget, seed):
            ids = torch.from_numpy(pad_batch([seqs[i] for i in batch]))
            inputs, labels = mask_tokens(ids, gen, vocab_size, mask_id)
            if (labels != -100).sum() == 0:
                continue
            loss, _, tgt = mlm_loss(model, inputs, labels, (ids != 1).long())
            total += loss.item() * len(tgt)
            count += len(tgt)
    model.train()
    return total / max(count, 1)


def stage_train(args):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tok = hf_tokenizer(args.workdir)
    vocab_size, mask_id = len(tok), tok.mask_token_id
    train = load_encoded(args.workdir, "train")
    heldout = load_encoded(args.workdir, "heldout")
    lengths = np.array([len(s) for s in train])
    model = build_model(vocab_size, args)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}],
                              lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    ckpt_path = os.path.join(args.workdir, "ckpt.pt")
    step, log, elapsed_before = 0, [], 0.0
    if args.resume and os.path.exists(ckpt_path):
        state = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        step, log, elapsed_before = state["step"], state["log"], state["elapsed"]
        print(f"resumed at step {step} ({elapsed_before / 60:.1f} min trained)", flush=True)
    warmup = max(1, int(args.warmup_frac * (args.total_steps - args.restart_at)))
    t_start, t_ckpt = time.time(), time.time()
    epoch_batches, epoch = None, -1
    window_loss, window_tokens, window_n = 0.0, 0, 0
    model.train()

    def save():
        state = {"model": model.state_dict(), "optim": optim.state_dict(), "step": step, "log": log,
                 "elapsed": elapsed_before + time.time() - t_start, "args": vars(args)}
        torch.save(state, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)  # never leave a half-written checkpoint

    while step < args.total_steps:
        # Batch order and masks depend only on (seed, step), so resuming reproduces them.
        # The number of batches per epoch depends on the sorted lengths only, not on the seed.
        if epoch_batches is None or step // len(epoch_batches) != epoch:
            epoch = 0 if epoch_batches is None else step // len(epoch_batches)
            epoch_batches = make_batches(lengths, args.token_budget, args.seed + epoch)
            if step // len(epoch_batches) != epoch:  # first call after a resume past epoch 0
                epoch = step // len(epoch_batches)
                epoch_batches = make_batches(lengths, args.token_budget, args.seed + epoch)
            perm = np.random.default_rng(args.seed + 1000 + epoch).permutation(len(epoch_batches))
            epoch_batches = [epoch_batches[i] for i in perm]
        batch = epoch_batches[step % len(epoch_batches)]
        ids = torch.from_numpy(pad_batch([train[i] for i in batch]))
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        inputs, labels = mask_tokens(ids, gen, vocab_size, mask_id)
        if (labels != -100).sum() == 0:
            step += 1
            continue
        for group in optim.param_groups:
            group["lr"] = lr_at(step - args.restart_at, args.total_steps - args.restart_at, args.lr, warmup)
        loss, _, _ = mlm_loss(model, inputs, labels, (ids != 1).long())
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        step += 1
        window_loss += loss.item()
        window_n += 1
        window_tokens += int((ids != 1).sum())
        if step % args.log_every == 0 or step == args.total_steps:
            now = elapsed_before + time.time() - t_start
            entry = {"step": step, "loss": window_loss / window_n, "lr": optim.param_groups[0]["lr"],
                     "minutes": now / 60, "epoch": epoch}
            if step % args.eval_every == 0 or step == args.total_steps:
                entry["heldout_loss"] = heldout_loss(model, heldout, vocab_size, mask_id, args.seed)
            log.append(entry)
            print(json.dumps(entry), f"tok/s={window_tokens / max(1e-9, now - (log[-2]['minutes'] * 60 if len(log) > 1 else 0)):.0f}",
                  flush=True)
            window_loss, window_tokens, window_n = 0.0, 0, 0
        if time.time() - t_ckpt > args.ckpt_minutes * 60:
            save()
            t_ckpt = time.time()
        if args.stop_step and step >= args.stop_step:
            break  # used to test that a resumed run matches an uninterrupted one
        if args.max_minutes and elapsed_before + time.time() - t_start > args.max_minutes * 60:
            print(f"stopping at step {step}: --max-minutes reached", flush=True)
            break
    save()
    print(f"done: step {step}, {(elapsed_before + time.time() - t_start) / 60:.1f} min", flush=True)


def stage_export(args):
    import torch

    tok = hf_tokenizer(args.workdir)
    state = torch.load(os.path.join(args.workdir, "ckpt.pt"), weights_only=False)
    saved_args = argparse.Namespace(**state["args"])
    model = build_model(len(tok), saved_args)
    model.load_state_dict(state["model"])
    model = model.to(torch.float16)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tok.save_pretrained(args.out)
    with open(os.path.join(args.out, "training_log.json"), "w") as fh:
        json.dump({"steps": state["step"], "train_minutes": state["elapsed"] / 60,
                   "args": state["args"], "log": state["log"]}, fh, indent=1)
    print("exported to", args.out)


def whole_word_positions(pieces):
    """Indices of pieces that are a whole word on their own: start with '▁', next piece starts a new word."""
    out = []
    for i, piece in enumerate(pieces):
        nxt = pieces[i + 1] if i + 1 < len(pieces) else "▁"
        word = piece[1:]
        if piece.startswith("▁") and nxt.startswith("▁") and sum(c.isalpha() for c in word) >= 2:
            out.append(i)
    return out


def stage_evaluate(args):
    import torch
    from transformers import XLMRobertaForMaskedLM, XLMRobertaTokenizer

    torch.set_num_threads(args.threads)
    tok = XLMRobertaTokenizer.from_pretrained(args.out)
    model = XLMRobertaForMaskedLM.from_pretrained(args.out, dtype=torch.float32).eval()
    vocab_size, mask_id = len(tok), tok.mask_token_id
    train = load_encoded(args.workdir, "train")
    heldout = load_encoded(args.workdir, "heldout")
    counts = np.bincount(np.concatenate(train), minlength=vocab_size)
    counts[:4] = 0
    counts[mask_id] = 0
    freq_rank = np.argsort(-counts, kind="stable")  # most frequent training tokens first

    # 1) masked-token accuracy over all held-out sentences, every picked token replaced by <mask>.
    gen = torch.Generator().manual_seed(args.seed + 7)
    hits1 = hits5 = base1 = base5 = n = 0
    with torch.no_grad():
        for batch in make_batches(np.array([len(s) for s in heldout]), 4096, args.seed):
            ids = torch.from_numpy(pad_batch([heldout[i] for i in batch]))
            picked = (torch.rand(ids.shape, generator=gen) < 0.15) & (ids > 3)
            if picked.sum() == 0:
                continue
            inputs = ids.masked_fill(picked, mask_id)
            logits = model(input_ids=inputs, attention_mask=(ids != 1).long()).logits[picked]  # [N, V]
            gold = ids[picked]
            top5 = logits.topk(5, dim=-1).indices
            hits1 += int((top5[:, 0] == gold).sum())
            hits5 += int((top5 == gold[:, None]).any(-1).sum())
            base1 += int((gold == int(freq_rank[0])).sum())
            base5 += int(np.isin(gold.numpy(), freq_rank[:5]).sum())
            n += len(gold)
    masked = {"heldout_sentences": len(heldout), "masked_tokens": n,
              "top1": hits1 / n, "top5": hits5 / n,
              "baseline_most_frequent_top1": base1 / n, "baseline_most_frequent_top5": base5 / n}
    print("masked-token accuracy:", masked)

    # 2) fill-mask: one whole-word token masked per held-out sentence, is it in the top 5?
    rng = np.random.default_rng(args.seed + 11)
    rows = [t for _, t in read_tsv(os.path.join(args.workdir, "heldout.tsv"))]
    cases = []
    for idx in rng.permutation(len(rows)):
        ids = heldout[idx]
        pieces = tok.convert_ids_to_tokens(ids[1:-1].tolist())
        spots = whole_word_positions(pieces)
        if len(pieces) < 4 or not spots:
            continue
        cases.append((idx, 1 + spots[rng.integers(len(spots))]))
        if len(cases) == args.fill_mask_cases:
            break
    word_counts = np.zeros(vocab_size, dtype=np.int64)  # frequency among whole-word training tokens
    for seq in train[:200000]:
        pieces = tok.convert_ids_to_tokens(seq[1:-1].tolist())
        for i in whole_word_positions(pieces):
            word_counts[seq[1 + i]] += 1
    word_rank = np.argsort(-word_counts, kind="stable")
    fm_hits1 = fm_hits5 = fm_base5 = fm_base5_word = 0
    examples = []
    with torch.no_grad():
        for idx, pos in cases:
            ids = torch.from_numpy(heldout[idx].astype(np.int64))[None]
            gold = int(ids[0, pos])
            inputs = ids.clone()
            inputs[0, pos] = mask_id
            top5 = model(input_ids=inputs).logits[0, pos].topk(5).indices.tolist()
            fm_hits1 += top5[0] == gold
            fm_hits5 += gold in top5
            fm_base5 += gold in freq_rank[:5]
            fm_base5_word += gold in word_rank[:5]
            if len(examples) < 12:
                examples.append({"text": rows[idx], "masked": tok.convert_ids_to_tokens(gold),
                                 "top5": tok.convert_ids_to_tokens(top5)})
    m = len(cases)
    fill = {"sentences": m, "top1": fm_hits1 / m, "top5": fm_hits5 / m,
            "baseline_most_frequent_token_top5": fm_base5 / m,
            "baseline_most_frequent_whole_word_top5": fm_base5_word / m,
            "uniform_chance_top5": 5 / (vocab_size - 4),
            "examples": examples}
    print("fill-mask:", {k: v for k, v in fill.items() if k != "examples"})
    with open(os.path.join(args.out, "training_log.json")) as fh:
        tlog = json.load(fh)
    with open(os.path.join(args.workdir, "corpus_stats.json")) as fh:
        stats = json.load(fh)
    result = {"masked_token_accuracy": masked, "fill_mask": fill,
              "training": {"steps": tlog["steps"], "train_minutes": tlog["train_minutes"],
                           "final_train_loss": tlog["log"][-1]["loss"],
                           "final_heldout_loss": next((e["heldout_loss"] for e in reversed(tlog["log"])
                                                       if "heldout_loss" in e), None)},
              "corpus": {k: stats[k] for k in ("catalog_files", "languages", "train_sentences",
                                               "heldout_sentences", "train_chars")}}
    with open(os.path.join(args.out, "eval.json"), "w") as fh:
        json.dump(result, fh, indent=1, ensure_ascii=False)
    plot_loss(tlog["log"], os.path.join(args.out, "loss_curve.png"))


def plot_loss(log, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot([e["step"] for e in log], [e["loss"] for e in log], lw=1, label="train (MLM, window mean)")
    ev = [e for e in log if "heldout_loss" in e]
    ax.plot([e["step"] for e in ev], [e["heldout_loss"] for e in ev], "o-", ms=3, label="held-out")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title("xlmr-demo masked-LM loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stages", nargs="+",
                   choices=["corpus", "tokenizer", "encode", "train", "export", "evaluate"])
    p.add_argument("--workdir", default="/tmp/demo_train")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "xlmr-demo"))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--spm-sentences", type=int, default=300000)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=1024)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-frac", type=float, default=0.04)
    p.add_argument("--token-budget", type=int, default=4096, help="tokens per batch incl. padding")
    p.add_argument("--total-steps", type=int, default=6000)
    p.add_argument("--max-minutes", type=float, default=0, help="stop early (0 = run all steps)")
    p.add_argument("--stop-step", type=int, default=0, help="save and stop at this step (0 = never)")
    p.add_argument("--ckpt-minutes", type=float, default=4)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--restart-at", type=int, default=0,
                   help="start a new warmup + linear decay at this step (to continue a finished run)")
    p.add_argument("--fill-mask-cases", type=int, default=1000)
    args = p.parse_args()
    stages = {"corpus": stage_corpus, "tokenizer": stage_tokenizer, "encode": stage_encode,
              "train": stage_train, "export": stage_export, "evaluate": stage_evaluate}
    for name in args.stages:
        stages[name](args)


if __name__ == "__main__":
    main()
