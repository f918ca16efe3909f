"""Review scores for the benchmarks, cached per dataset and per scorer version.

Shared by ``recommend_amazon.py`` and ``satisfaction_amazon.py`` (any review file). The cache
file is keyed by **the data's fingerprint and the model version**, so two datasets never
overwrite each other's scores and a new model never reuses old ones::

    benchmarks/results/cache/scores_<dataset>_<scorer>_<version>_<fingerprint>.parquet

``<dataset>`` is the review file's name without its suffixes (readable only; the fingerprint is
the key): ``reviews_Musical_Instruments_5``. ``<fingerprint>`` is a SHA-256 over the review ids
and the hashes of the texts the scorer reads, in file order (16 hex digits), so the same file
loaded again hits the cache and any change of a text or of the order misses it. A cache file
whose rows do not match (e.g. edited by hand) is ignored and rewritten.

    python benchmarks/score_cache.py --reviews FILE [--scorer transformer|lexicon]   # warm the cache
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / "benchmarks/results/cache"
AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
#: HR@10 / NDCG@10 reference figures exist only for this file (``../shared/data/README.md``).
AMAZON_REFERENCE_NAME = "reviews_Musical_Instruments_5.json.gz"

log = logging.getLogger(__name__)


def dataset_name(path: Path) -> str:
    """A file-name-safe name of a review file: its name without ``.json.gz``/``.csv``/... suffixes."""
    name = Path(path).name
    for suffix in (".gz", ".bz2", ".zip", ".json", ".jsonl", ".csv", ".tsv", ".parquet"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "reviews"


def data_fingerprint(reviews: pd.DataFrame, text_hashes) -> str:
    """SHA-256 (16 hex digits) over ``review_id`` and text hash of every review, in order."""
    h = hashlib.sha256()
    for rid, th in zip(reviews["review_id"].astype(str), text_hashes):
        h.update(f"{rid}\t{th}\n".encode())
    return h.hexdigest()[:16]


def make_scorer(scorer_name: str):
    """The benchmark scorers: the shipped transformer in int8 on the CPU, or the lexicon."""
    from emorec import sentiment

    if scorer_name == "lexicon":
        return sentiment.LexiconScorer()
    if scorer_name == "transformer":
        from emorec.sentiment.transformer import TransformerScorer

        return TransformerScorer(quantize=True)
    raise ValueError(f"unknown scorer {scorer_name!r}; use transformer or lexicon")


def cache_path(dataset: str, scorer, fingerprint: str) -> Path:
    version = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(scorer.version))
    return CACHE_DIR / f"scores_{dataset}_{scorer.name}_{version}_{fingerprint}.parquet"


def review_scores(reviews: pd.DataFrame, scorer_name: str, dataset: str = "reviews") -> tuple[pd.DataFrame, bool, Path]:
    """Score columns for ``reviews`` (with ``review_id``, ``title``, ``text``), from the cache when
    it holds this data scored by this model version; ``(scores, cached, cache_file)``."""
    from emorec import sentiment

    texts = sentiment.review_text(reviews["title"], reviews["text"])
    hashes = sentiment.text_hash(texts).to_numpy()
    scorer = make_scorer(scorer_name)
    path = cache_path(dataset, scorer, data_fingerprint(reviews, hashes))
    if path.exists():
        cached = pd.read_parquet(path)
        if len(cached) == len(reviews) and (cached["text_hash"].to_numpy() == hashes).all() and \
                (cached["review_id"].astype(str).to_numpy() == reviews["review_id"].astype(str).to_numpy()).all():
            return cached.drop(columns="text_hash"), True, path
        log.warning("score cache %s does not match the data; rescoring", path)
    out = scorer.score(texts.tolist())
    out.insert(0, "review_id", reviews["review_id"].to_numpy())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    out.assign(text_hash=hashes).to_parquet(tmp, index=False)
    tmp.replace(path)
    return out, False, path


def review_embeddings(reviews: pd.DataFrame, dataset: str = "reviews", threads: int = 1) -> tuple[np.ndarray, bool, Path]:
    """Mean-pooled MiniLM sentence embeddings of the reviews (the states the shipped transformer
    scorer's heads read: ``EmotionEncoder`` output ``pooled``, adapters merged, int8 on the CPU),
    float32 ``(n_reviews, 384)`` in review order; cached like the scores (same fingerprint,
    ``emb_`` prefix, ``.npy`` without pickle). ``(embeddings, cached, cache_file)``."""
    import torch

    from emorec import sentiment
    from emorec.sentiment.encoder import encode_batches, tokenize

    texts = sentiment.review_text(reviews["title"], reviews["text"])
    scorer = make_scorer("transformer")
    fp = data_fingerprint(reviews, sentiment.text_hash(texts).to_numpy())
    scores_file = cache_path(dataset, scorer, fp)
    path = scores_file.with_name(scores_file.stem.replace("scores_", "emb_", 1) + ".npy")
    if path.exists():
        emb = np.load(path, allow_pickle=False)
        if emb.shape[0] == len(reviews):
            return emb, True, path
    torch.set_num_threads(threads)
    scorer.load()
    ids = tokenize(scorer._tokenizer, texts.tolist(), scorer.max_length)
    emb = None
    for idx, out, _ in encode_batches(scorer._model, ids, max_tokens=scorer.max_tokens):
        pooled = out["pooled"].numpy()
        if emb is None:
            emb = np.zeros((len(ids), pooled.shape[1]), np.float32)
        emb[idx] = pooled
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb, allow_pickle=False)
    tmp.replace(path)
    return emb, False, path


def load_file(path: Path) -> pd.DataFrame:
    """Load and clean a review file as the pipeline does (any format the loaders accept)."""
    from emorec.jobs.loaders import load_reviews
    from emorec.jobs.pipeline import clean_reviews

    return clean_reviews(load_reviews(path)).reviews


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reviews", type=Path, default=AMAZON)
    ap.add_argument("--scorer", choices=["transformer", "lexicon"], default="transformer")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    if not args.reviews.exists():
        print(f"SKIP: {args.reviews} not found")
        return 0
    reviews = load_file(args.reviews)
    _, cached, path = review_scores(reviews, args.scorer, dataset_name(args.reviews))
    print(f"{len(reviews)} reviews, {args.scorer} scores {'from' if cached else 'written to'} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
