"""Fine-tune the demo body into the language-identification classifier shipped in models/xlmr-langid/ (dev-only tool).

The model is Hugging Face's own `XLMRobertaForSequenceClassification` (transformers 4.57.x), initialised from the
masked-LM checkpoint models/xlmr-demo (its encoder; the classification head is new), and fine-tuned on translated
user-interface strings from the gettext message catalogs (`*.mo`) under /usr/share/locale, labelled with the
catalog's language (ISO 639-1 codes; English from the msgids).

Stages (each reads the previous stage's files from --workdir, default /tmp/langid_train):

    corpus     read the catalogs of the chosen languages, clean, filter, deduplicate, split by project
    encode     tokenize with HF's slow XLMRobertaTokenizer from models/xlmr-demo (ids exactly HF's)
    train      fine-tuning; seeded, checkpoints every --ckpt-minutes, --resume continues
    export     float16 safetensors + the demo's tokenizer files into --out (models/xlmr-langid)
    evaluate   held-out accuracy per language and confusions, on the exported float16 file -> eval.json

    python tools/train_langid.py corpus encode
    nohup python tools/train_langid.py train --total-steps N > /tmp/langid_train/train.log &
    python tools/train_langid.py export evaluate

Leakage control: the split is by *project*, not by sentence: the catalogs of one project (its domains, e.g.
postgres-15, psql-15, pg_dump-15, ... are one project) are all train or all held-out, chosen by a hash of the
project name. A string that occurs in a training project is removed from the held-out set, and a string that
occurs with two labels is dropped everywhere. Everything random is drawn from generators seeded by --seed (and
the step number), so a run resumed from a checkpoint follows the same batches as an uninterrupted one.
"""

import argparse
import collections
import hashlib
import json
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_demo_model import (catalog_files, clean_line, lr_at, make_batches, pad_batch, read_catalog,  # noqa: E402
                              read_tsv)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_DIR = os.path.join(ROOT, "models", "xlmr-demo")
TOKENIZER_FILES = ("sentencepiece.bpe.model", "tokenizer_config.json", "special_tokens_map.json")
CORPUS_ONLY = ("stages", "out", "train_per_language", "heldout_per_language", "resume", "stop_step")  # not train's
MAX_TOKENS = 64  # training sequences are cut to 64 tokens (<s> ... </s>); the language shows long before that

# label (ISO 639-1) -> the locale folders whose msgstrs carry it; "en" comes from the msgids of every catalog read.
LANGUAGES = {
    "cs": ["cs"], "da": ["da"], "de": ["de", "de_CH"], "el": ["el"], "en": [], "es": ["es"], "fi": ["fi"],
    "fr": ["fr"], "hu": ["hu"], "id": ["id"], "it": ["it"], "ja": ["ja"], "ko": ["ko"], "nl": ["nl"],
    "pl": ["pl"], "pt": ["pt", "pt_BR", "pt_PT"], "ro": ["ro"], "ru": ["ru"], "sv": ["sv"], "tr": ["tr"],
    "uk": ["uk"], "vi": ["vi"], "zh": ["zh_CN", "zh_TW", "zh_HK"],
}
LOCALE_LABEL = {loc: label for label, locs in LANGUAGES.items() for loc in locs}

# Catalog domains that belong together (shared strings, one upstream): one project each for the split.
_PROJECTS = [
    (re.compile(r"^(postgres|psql|initdb|plpgsql|libpq5|pg_\w+|pgscripts)-\d+$"), "postgresql"),
    (re.compile(r"^(binutils|bfd|gas|gold|gprof|ld|opcodes)$"), "binutils"),
    (re.compile(r"^gtk20(-properties)?$"), "gtk20"),
    (re.compile(r"^(apt|libapt-pkg6\.0|python-apt)$"), "apt"),
    (re.compile(r"^dpkg(-dev)?$"), "dpkg"),
    (re.compile(r"^gettext-(runtime|tools)$"), "gettext"),
    (re.compile(r"^(wget|man-db)(-gnulib)?$"), None),  # wget-gnulib -> wget, man-db-gnulib -> man-db
]
HELDOUT_SALT = "xlmr-langid"
HELDOUT_MODULO = 5  # a project is held out when sha1(salt:project) % 5 == 0 (about a fifth of the projects)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")  # kana, han, hangul


def project_of(domain):
    for pattern, name in _PROJECTS:
        match = pattern.match(domain)
        if match:
            return name or match.group(1)
    return domain


def is_heldout_project(project):
    digest = hashlib.sha1(f"{HELDOUT_SALT}:{project}".encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % HELDOUT_MODULO == 0


def long_enough(text):
    """Too short to say which language it is? CJK text needs 4 characters, spaced scripts 2 words and 10."""
    if _CJK.search(text):
        return sum(ch.isalpha() for ch in text) >= 4
    return len(text) >= 10 and len(text.split()) >= 2


def stage_corpus(args):
    labels = collections.defaultdict(set)  # text -> labels it occurs with
    projects = collections.defaultdict(set)  # text -> projects it occurs in
    dropped = collections.Counter()
    files_read, skipped = 0, []
    for path in catalog_files():
        locale, domain = path.split(os.sep)[-3], os.path.basename(path)[:-3]
        if locale not in LOCALE_LABEL:
            continue
        if domain.startswith("iso_"):  # iso-codes: names of languages, countries, currencies, not sentences
            dropped["iso-codes catalog (names, not sentences)"] += 1
            continue
        try:
            pairs = read_catalog(path)
        except Exception as exc:  # a few catalogs declare the wrong charset
            skipped.append(f"{path}: {type(exc).__name__}")
            continue
        files_read += 1
        project, label = project_of(domain), LOCALE_LABEL[locale]
        for msgid, msgstr in pairs:
            source = {c for c in map(clean_line, msgid.split("\n")) if c}
            lowered = {s.lower() for s in source}
            for text in source:
                labels[text].add("en")
                projects[text].add(project)
            for line in msgstr.split("\n"):
                text = clean_line(line)
                if text is None:
                    continue
                if text.lower() in lowered:
                    dropped["untranslated (equal to its msgid)"] += 1
                    continue
                labels[text].add(label)
                projects[text].add(project)

    train, heldout = collections.defaultdict(list), collections.defaultdict(list)
    for text, found in labels.items():
        if not long_enough(text):
            dropped["too short"] += 1
            continue
        if len(found) > 1:
            dropped["same string under two or more labels"] += 1
            continue
        label = next(iter(found))  # a msgstr equal to any msgid anywhere has two labels ("en" too): dropped
        held = [is_heldout_project(p) for p in projects[text]]
        if all(held):
            heldout[label].append(text)
        else:
            if any(held):
                dropped["in held-out and training projects: kept for training only"] += 1
            train[label].append(text)

    rng = np.random.default_rng(args.seed)
    out = {"train": [], "heldout": []}
    counts = {}
    for label in sorted(LANGUAGES):
        counts[label] = {"train_available": len(train[label]), "heldout_available": len(heldout[label])}
        for split, pool, cap in (("train", train[label], args.train_per_language),
                                 ("heldout", heldout[label], args.heldout_per_language)):
            pool = sorted(pool)  # set order is not stable across runs; sort, then a seeded sample
            pick = sorted(rng.permutation(len(pool))[:cap])
            out[split].extend(f"{label}\t{pool[i]}\n" for i in pick)
            counts[label][split] = len(pick)
    os.makedirs(args.workdir, exist_ok=True)
    for split, lines in out.items():
        order = np.random.default_rng(args.seed + 1).permutation(len(lines))
        with open(os.path.join(args.workdir, f"{split}.tsv"), "w", encoding="utf-8") as fh:
            fh.writelines(lines[i] for i in order)
    all_projects = sorted({p for ps in projects.values() for p in ps})
    stats = {
        "seed": args.seed,
        "train_per_language": args.train_per_language,  # caps: a seeded sample of at most this many per label
        "heldout_per_language": args.heldout_per_language,
        "catalog_files_read": files_read,
        "catalog_files_skipped": skipped,
        "projects": len(all_projects),
        "heldout_projects": [p for p in all_projects if is_heldout_project(p)],
        "dropped": dict(dropped),
        "per_language": counts,
        "train_sentences": len(out["train"]),
        "heldout_sentences": len(out["heldout"]),
    }
    with open(os.path.join(args.workdir, "corpus_stats.json"), "w") as fh:
        json.dump(stats, fh, indent=1, ensure_ascii=False)
    print(json.dumps(stats, ensure_ascii=False))


def label_names():
    return sorted(LANGUAGES)


def hf_tokenizer():
    from transformers import XLMRobertaTokenizer

    return XLMRobertaTokenizer.from_pretrained(DEMO_DIR)


def stage_encode(args):
    tok = hf_tokenizer()
    label2id = {name: i for i, name in enumerate(label_names())}
    for split in ("train", "heldout"):
        rows = read_tsv(os.path.join(args.workdir, f"{split}.tsv"))
        t0 = time.time()
        # held-out sentences are kept whole (the evaluation runs them as the pipeline does); training ones are cut
        limit = MAX_TOKENS if split == "train" else 128
        enc = tok([text for _, text in rows], truncation=True, max_length=limit)
        ids, offsets = [], [0]
        for seq in enc["input_ids"]:
            ids.extend(seq)
            offsets.append(len(ids))
        np.savez(os.path.join(args.workdir, f"{split}_ids.npz"), ids=np.asarray(ids, dtype=np.int32),
                 offsets=np.asarray(offsets, dtype=np.int64),
                 labels=np.asarray([label2id[label] for label, _ in rows], dtype=np.int64))
        print(f"encode {split}: {len(rows)} sentences, {len(ids)} tokens, {time.time() - t0:.0f}s", flush=True)


def load_encoded(workdir, split):
    data = np.load(os.path.join(workdir, f"{split}_ids.npz"))
    ids, off = data["ids"], data["offsets"]
    return [ids[off[i]:off[i + 1]] for i in range(len(off) - 1)], data["labels"]


def build_model(dropout):
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    names = label_names()
    config = XLMRobertaConfig.from_pretrained(DEMO_DIR)
    config.architectures = ["XLMRobertaForSequenceClassification"]
    config.id2label = dict(enumerate(names))
    config.label2id = {name: i for i, name in enumerate(names)}
    config.problem_type = "single_label_classification"
    config.hidden_dropout_prob = dropout
    config.attention_probs_dropout_prob = dropout
    # The encoder comes from the masked-LM checkpoint; the classification head (dense + out_proj) is new and
    # drawn from HF's default initialisation (σ = 0.02) under torch.manual_seed. The LM head is not loaded.
    return XLMRobertaForSequenceClassification.from_pretrained(DEMO_DIR, config=config)


def accuracy(model, seqs, labels, budget=4096):
    """(accuracy, mean cross-entropy) of `model` (eval mode) on the encoded sentences."""
    import torch

    model.eval()
    hits, loss_sum = 0, 0.0
    with torch.no_grad():
        for batch in make_batches(np.array([len(s) for s in seqs]), budget, 0):
            ids = torch.from_numpy(pad_batch([seqs[i] for i in batch]))
            gold = torch.from_numpy(labels[batch])
            logits = model(input_ids=ids, attention_mask=(ids != 1).long()).logits
            hits += int((logits.argmax(-1) == gold).sum())
            loss_sum += float(torch.nn.functional.cross_entropy(logits.float(), gold, reduction="sum"))
    model.train()
    return hits / len(seqs), loss_sum / len(seqs)


def stage_train(args):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, train_labels = load_encoded(args.workdir, "train")
    heldout, heldout_labels = load_encoded(args.workdir, "heldout")
    # a fixed sample of the held-out set, to watch progress; the full set is scored by `evaluate` only
    watch = np.random.default_rng(args.seed + 5).permutation(len(heldout))[:args.watch_sentences]
    watch_seqs, watch_labels = [heldout[i] for i in watch], heldout_labels[watch]
    lengths = np.array([len(s) for s in train])
    model = build_model(args.dropout)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}],
                              lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    ckpt_path = os.path.join(args.workdir, "ckpt.pt")
    step, log, elapsed_before, sentences_seen = 0, [], 0.0, 0
    if args.resume and os.path.exists(ckpt_path):
        state = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        step, log, elapsed_before = state["step"], state["log"], state["elapsed"]
        sentences_seen = state.get("sentences_seen", 0)
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed at step {step} ({elapsed_before / 60:.1f} min trained)", flush=True)
    elif log == []:
        acc, loss = accuracy(model, watch_seqs, watch_labels)
        log.append({"step": 0, "minutes": 0.0, "heldout_watch_accuracy": acc, "heldout_watch_loss": loss})
        print(json.dumps(log[-1]), flush=True)
    warmup = max(1, int(args.warmup_frac * args.total_steps))
    t_start, t_ckpt = time.time(), time.time()
    epoch_batches, epoch = None, -1
    window_loss, window_hits, window_n, window_tokens, window_t = 0.0, 0, 0, 0, time.time()
    model.train()

    def save():
        state = {"model": model.state_dict(), "optim": optim.state_dict(), "step": step, "log": log,
                 "elapsed": elapsed_before + time.time() - t_start, "args": vars(args),
                 "sentences_seen": sentences_seen, "torch_rng": torch.get_rng_state()}
        torch.save(state, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)  # never leave a half-written checkpoint

    while step < args.total_steps:
        # Batch order depends only on (seed, epoch), so resuming reproduces it (dropout masks come from the
        # torch generator, whose state the checkpoint carries).
        n_batches = len(make_batches(lengths, args.token_budget, args.seed)) if epoch_batches is None \
            else len(epoch_batches)
        if step // n_batches != epoch:
            epoch = step // n_batches
            epoch_batches = make_batches(lengths, args.token_budget, args.seed + epoch)
            perm = np.random.default_rng(args.seed + 1000 + epoch).permutation(len(epoch_batches))
            epoch_batches = [epoch_batches[i] for i in perm]
        batch = epoch_batches[step % len(epoch_batches)]
        ids = torch.from_numpy(pad_batch([train[i] for i in batch]))
        gold = torch.from_numpy(train_labels[batch])
        for group in optim.param_groups:
            group["lr"] = lr_at(step, args.total_steps, args.lr, warmup)
        logits = model(input_ids=ids, attention_mask=(ids != 1).long()).logits
        loss = torch.nn.functional.cross_entropy(logits, gold)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        step += 1
        sentences_seen += len(batch)
        window_loss += loss.item() * len(batch)
        window_hits += int((logits.argmax(-1) == gold).sum())
        window_n += len(batch)
        window_tokens += int((ids != 1).sum())
        if step % args.log_every == 0 or step == args.total_steps:
            now = elapsed_before + time.time() - t_start
            entry = {"step": step, "loss": window_loss / window_n, "train_accuracy": window_hits / window_n,
                     "lr": optim.param_groups[0]["lr"], "minutes": now / 60, "epoch": epoch,
                     "sentences_seen": sentences_seen,
                     "tokens_per_s": window_tokens / max(1e-9, time.time() - window_t)}
            if step % args.eval_every == 0 or step == args.total_steps:
                entry["heldout_watch_accuracy"], entry["heldout_watch_loss"] = accuracy(model, watch_seqs,
                                                                                        watch_labels)
            log.append(entry)
            print(json.dumps(entry), flush=True)
            window_loss, window_hits, window_n, window_tokens, window_t = 0.0, 0, 0, 0, time.time()
        if time.time() - t_ckpt > args.ckpt_minutes * 60:
            save()
            t_ckpt = time.time()
        if args.stop_step and step >= args.stop_step:
            break
        if args.max_minutes and elapsed_before + time.time() - t_start > args.max_minutes * 60:
            print(f"stopping at step {step}: --max-minutes reached", flush=True)
            break
    save()
    print(f"done: step {step}, {(elapsed_before + time.time() - t_start) / 60:.1f} min", flush=True)


def stage_export(args):
    import shutil

    import torch

    state = torch.load(os.path.join(args.workdir, "ckpt.pt"), weights_only=False)
    model = build_model(state["args"]["dropout"])
    model.load_state_dict(state["model"])
    model = model.to(torch.float16)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    for name in TOKENIZER_FILES:  # the demo's tokenizer, byte for byte
        shutil.copyfile(os.path.join(DEMO_DIR, name), os.path.join(args.out, name))
    with open(os.path.join(args.workdir, "corpus_stats.json")) as fh:
        stats = json.load(fh)
    with open(os.path.join(args.out, "training_log.json"), "w") as fh:
        json.dump({"steps": state["step"], "train_minutes": state["elapsed"] / 60,
                   "sentences_seen": state.get("sentences_seen"),
                   "args": {k: v for k, v in state["args"].items() if k not in CORPUS_ONLY}, "corpus": stats,
                   "log": state["log"]}, fh, indent=1, ensure_ascii=False)
    print("exported to", args.out)


def stage_evaluate(args):
    import torch
    from transformers import XLMRobertaForSequenceClassification

    torch.set_num_threads(args.threads)
    model = XLMRobertaForSequenceClassification.from_pretrained(args.out, dtype=torch.float32).eval()
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    heldout, gold = load_encoded(args.workdir, "heldout")
    rows = read_tsv(os.path.join(args.workdir, "heldout.tsv"))
    pred = np.zeros(len(heldout), dtype=np.int64)
    with torch.no_grad():
        for batch in make_batches(np.array([len(s) for s in heldout]), 4096, 0):
            ids = torch.from_numpy(pad_batch([heldout[i] for i in batch]))
            pred[batch] = model(input_ids=ids, attention_mask=(ids != 1).long()).logits.argmax(-1).numpy()
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)  # [gold, predicted]
    np.add.at(confusion, (gold, pred), 1)
    per_language = {names[i]: {"sentences": int(confusion[i].sum()),
                               "accuracy": float(confusion[i, i] / max(1, confusion[i].sum()))}
                    for i in range(len(names))}
    off = [(int(confusion[g, p]), names[g], names[p]) for g in range(len(names)) for p in range(len(names))
           if g != p and confusion[g, p]]
    off.sort(key=lambda t: (-t[0], t[1], t[2]))
    errors = [{"text": rows[i][1], "gold": names[gold[i]], "predicted": names[pred[i]]}
              for i in np.nonzero(pred != gold)[0][:40]]
    chars = np.array([len(text) for _, text in rows])
    by_length = {}
    for name, low, high in (("under 20 characters", 0, 20), ("20-39 characters", 20, 40),
                            ("40 characters or more", 40, 10**9)):
        pick = (chars >= low) & (chars < high)
        by_length[name] = {"sentences": int(pick.sum()), "accuracy": float((pred[pick] == gold[pick]).mean())}
    result = {
        "heldout_sentences": len(heldout),
        "overall_accuracy": float((pred == gold).mean()),
        "macro_accuracy": float(np.mean([v["accuracy"] for v in per_language.values()])),
        "per_language": per_language,
        "by_length": by_length,
        "top_confusions": [{"gold": g, "predicted": p, "count": c} for c, g, p in off[:20]],
        "confusion_matrix": {"labels": names, "rows_gold_columns_predicted": confusion.tolist()},
        "example_errors": errors,
    }
    with open(os.path.join(args.out, "eval.json"), "w") as fh:
        json.dump(result, fh, indent=1, ensure_ascii=False)
    print(f"held-out accuracy {result['overall_accuracy']:.4f} (macro {result['macro_accuracy']:.4f}) "
          f"on {len(heldout)} sentences")
    for name, value in per_language.items():
        print(f"  {name}: {value['accuracy']:.4f} ({value['sentences']})")
    print("by length:", by_length)
    print("top confusions:", result["top_confusions"][:10])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stages", nargs="+", choices=["corpus", "encode", "train", "export", "evaluate"])
    p.add_argument("--workdir", default="/tmp/langid_train")
    p.add_argument("--out", default=os.path.join(ROOT, "models", "xlmr-langid"))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train-per-language", type=int, default=6000)
    p.add_argument("--heldout-per-language", type=int, default=1000)
    p.add_argument("--total-steps", type=int, default=1000)
    p.add_argument("--token-budget", type=int, default=2048, help="tokens per batch, padding included")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup-frac", type=float, default=0.06)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--watch-sentences", type=int, default=1000)
    p.add_argument("--ckpt-minutes", type=float, default=3.0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-step", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=0.0)
    args = p.parse_args()
    for stage in args.stages:
        globals()[f"stage_{stage}"](args)


if __name__ == "__main__":
    main()
