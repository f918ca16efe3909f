"""One interface, every model: the same checks run over every registered recommender, the
hybrid included, on a small hand-built shop.

The shop has two taste groups (even users review even items, odd users odd items), a clock,
star ratings and sentiment scores, so every model - the hybrid too - can train, and two facts
hold whatever a model's formula: a user's list is mostly of their own group, and the items most
similar to an item are mostly of its group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from emorec.common.errors import ArtifactError, ConfigError, InputError
from emorec.recommender import MODEL_NAMES, MODELS, Recommendations, Recommender, TrainingData
from emorec.recommender.base import item_mask
from emorec.recommender.explain import Explanation

N_USERS, N_ITEMS, PER_USER = 60, 24, 6
#: Small, fast settings per model (defaults for the others).
FAST = {
    "als": {"factors": 8, "iterations": 10, "num_threads": 1},
    "bpr": {"factors": 8, "iterations": 150, "learning_rate": 0.05},
    "ease": {"l2": 10.0},
    "itemknn": {"k": 20},
    "hybrid": {"n_estimators": 20, "min_child_samples": 5, "candidates": 10, "rounds": 2,
               "generators": {"ease": {"l2": 10.0}, "itemknn": {"k": 20}, "trend": {}, "markov": {},
                              "ease_recent": {}, "ease_emotion": {"l2": 10.0}, "profile": {}}},
}
ALL = sorted(MODELS)


def _shop(seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2022-01-01", tz="UTC")
    for u in range(N_USERS):
        for k, i in enumerate(rng.choice(np.arange(u % 2, N_ITEMS, 2), PER_USER, replace=False)):
            rows.append((f"r{len(rows)}", f"u{u:02d}", f"i{i:02d}", float(rng.integers(3, 6)),
                         t0 + pd.Timedelta(days=int(7 * k + rng.integers(0, 3)))))
    rv = pd.DataFrame(rows, columns=["review_id", "user_id", "item_id", "rating", "timestamp"])
    valence = np.where(rv["rating"] >= 4, 0.7, 0.1) + rng.normal(0, 0.05, len(rv))
    scores = pd.DataFrame({"review_id": rv["review_id"], "p_negative": 0.1, "p_neutral": 0.2,
                           "p_positive": (valence > 0.3) * 0.7, "valence": valence, "is_empty": False, "n_tokens": 20,
                           "asp_quality_mentions": (rng.random(len(rv)) < 0.4).astype(float)})
    scores["asp_quality_sentiment"] = np.where(scores["asp_quality_mentions"] > 0, 0.6, np.nan)
    items = pd.DataFrame({"item_id": [f"i{i:02d}" for i in range(N_ITEMS)], "category": ["even", "odd"] * (N_ITEMS // 2)})
    return rv, scores, items


@pytest.fixture(scope="module")
def data() -> TrainingData:
    rv, scores, items = _shop()
    return TrainingData.from_reviews(rv, scores, items)


@pytest.fixture(scope="module")
def fitted(data):
    cache: dict[str, Recommender] = {}

    def get(name: str) -> Recommender:
        if name not in cache:
            cache[name] = MODELS[name](**FAST.get(name, {})).fit(data)
        return cache[name]

    return get


def _parity(data: TrainingData, idx: np.ndarray) -> np.ndarray:
    return np.array([int(s[1:]) % 2 for s in data.items.lookup(idx)])


def test_every_model_the_service_trains_is_registered_and_tested():
    assert set(MODEL_NAMES) == set(MODELS) == set(ALL)
    for cls in MODELS.values():
        assert isinstance(cls.uses_scores, bool) and isinstance(cls.needs_timestamps, bool) and isinstance(cls.explains, bool)


@pytest.mark.parametrize("name", ALL)
def test_recommend_returns_typed_lists_of_unseen_items(name, data, fitted):
    model = fitted(name)
    users = np.arange(N_USERS)
    res = model.recommend(users, data.user_items, N=5, seen=data.seen)
    assert isinstance(res, Recommendations)
    assert res.ids.shape == res.scores.shape == (N_USERS, 5)
    assert res.ids.dtype == np.int64 and res.scores.dtype == np.float32 and res.explanations is None
    assert ((res.ids >= 0) & (res.ids < model.n_items)).all()  # every user has 12 unseen items of 24
    assert all(len(set(row)) == 5 for row in res.ids)
    assert (np.diff(res.scores, axis=1) <= 0).all()  # best first
    seen = data.seen.toarray() > 0
    assert not seen[np.arange(N_USERS)[:, None], res.ids].any()
    if name != "popular":  # the same list for everyone cannot follow taste
        assert (_parity(data, res.ids.ravel()) == np.repeat(users % 2, 5)).mean() > 0.75
    # seen items are allowed back when asked
    everything = model.recommend(users, data.user_items, N=N_ITEMS, seen=data.seen, filter_already_liked_items=False)
    assert seen[np.arange(N_USERS)[:, None], np.where(everything.ids >= 0, everything.ids, 0)][everything.ids >= 0].any()


@pytest.mark.parametrize("name", ALL)
def test_filter_items_items_and_padding(name, data, fitted):
    model = fitted(name)
    users = np.arange(10)
    rows, seen = data.user_items[users], data.seen[users]
    stock = np.arange(0, N_ITEMS, 3)  # in-stock items of both groups
    banned = stock[:2]
    res = model.recommend(users, rows, N=N_ITEMS, seen=seen, filter_items=banned, items=stock)
    eligible = item_mask(N_ITEMS, banned, stock)[None, :] & ~(seen.toarray() > 0)
    for u in range(len(users)):
        listed = res.ids[u][res.ids[u] >= 0]
        assert set(listed) <= set(np.flatnonzero(eligible[u]))
        n = len(listed)
        assert n <= eligible[u].sum() < N_ITEMS
        assert (res.ids[u, n:] == -1).all() and np.isneginf(res.scores[u, n:]).all()  # padded at the end
        assert np.isfinite(res.scores[u, :n]).all()
    # nothing eligible: an all-padding list, not an error
    empty = model.recommend(users, rows, N=3, seen=seen, items=np.array([], np.int64))
    assert (empty.ids == -1).all() and np.isneginf(empty.scores).all()


@pytest.mark.parametrize("name", ALL)
def test_one_user_id_gives_one_list(name, data, fitted):
    model = fitted(name)
    batch = model.recommend(np.arange(3), data.user_items[:3], N=4, seen=data.seen[:3])
    one = model.recommend(1, data.user_items[1], N=4, seen=data.seen[1])
    assert one.ids.shape == one.scores.shape == (4,)
    np.testing.assert_array_equal(one.ids, batch.ids[1])
    np.testing.assert_allclose(one.scores, batch.scores[1], rtol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_a_new_user_is_served_from_a_history_row(name, data, fitted):
    model = fitted(name)
    even = data.items.index(["i00", "i02", "i04"])
    row = sp.csr_matrix((np.ones(3, np.float32), (np.zeros(3, int), even)), shape=(1, N_ITEMS))
    res = model.recommend(np.array([-1]), row, N=5)
    assert (res.ids >= 0).all() and not set(res.ids[0]) & set(even)
    if name != "popular":
        assert (_parity(data, res.ids[0]) == 0).mean() >= 0.6


@pytest.mark.parametrize("name", ALL)
def test_explanations_only_from_models_that_explain(name, data, fitted):
    model = fitted(name)
    res = model.recommend(np.arange(4), data.user_items[:4], N=3, seen=data.seen[:4], explain=True)
    if model.explains:
        assert res.explanations is not None and res.explanations.shape == (4, 3)
        assert all(isinstance(e, Explanation) and e.text for e in res.explanations[res.ids >= 0])
    else:
        assert res.explanations is None


@pytest.mark.parametrize("name", ALL)
def test_similar_items_never_the_item_itself(name, data, fitted):
    model = fitted(name)
    if model.describe_similarity() is None:
        with pytest.raises(ConfigError, match=f"{name} model has no item similarity"):
            model.similar_items(0)
        return
    items = np.arange(N_ITEMS)
    res = model.similar_items(items, N=5)
    assert isinstance(res, Recommendations) and res.ids.shape == (N_ITEMS, 5)
    assert not (res.ids == items[:, None]).any()
    valid = res.ids >= 0
    assert valid[:, :2].all()  # every item has neighbours in this shop
    assert (_parity(data, res.ids[valid]) == np.broadcast_to(items[:, None] % 2, res.ids.shape)[valid]).mean() > 0.75
    one = model.similar_items(4, N=5, filter_items=res.ids[4, :1])
    assert one.ids.shape == (5,) and 4 not in one.ids and res.ids[4, 0] not in one.ids
    with pytest.raises(InputError, match="outside"):
        model.similar_items(N_ITEMS)


@pytest.mark.parametrize("name", ALL)
def test_save_and_load_give_identical_lists(name, data, fitted, tmp_path):
    model = fitted(name)
    model.save_pretrained(tmp_path / name)
    loaded = Recommender.from_pretrained(tmp_path / name)
    assert type(loaded) is type(model) and loaded.config == model.config
    users = np.arange(N_USERS)
    a = model.recommend(users, data.user_items, N=5, seen=data.seen, explain=True)
    b = loaded.recommend(users, data.user_items, N=5, seen=data.seen, explain=True)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    if model.explains:
        np.testing.assert_array_equal(a.explanations, b.explanations)
    if model.describe_similarity() is not None:
        np.testing.assert_array_equal(model.similar_items(np.arange(5)).ids, loaded.similar_items(np.arange(5)).ids)


@pytest.mark.parametrize("name", ALL)
def test_unknown_parameter_and_config_plus_kwargs_fail(name):
    cls = MODELS[name]
    with pytest.raises(ConfigError, match=r"unknown \w+ field 'no_such_param'.*valid fields: "):
        cls(no_such_param=1)
    field = next(iter(cls.Config.model_fields))
    with pytest.raises(ConfigError, match=f"not both.*{field}"):
        cls(cls.Config(), **{field: cls.Config.model_fields[field].get_default(call_default_factory=True)})


@pytest.mark.parametrize("name", ALL)
def test_bad_requests_name_the_problem(name, data, fitted):
    model = fitted(name)
    with pytest.raises(InputError, match="shape"):
        model.recommend(np.arange(2), data.user_items[:3])
    with pytest.raises(InputError, match="N must be"):
        model.recommend(np.arange(2), data.user_items[:2], N=0)


@pytest.mark.parametrize("name", ALL)
def test_a_bare_matrix_fits_the_models_that_need_nothing_else(name, data):
    cls = MODELS[name]
    if cls.needs_timestamps:
        with pytest.raises(InputError, match="time-stamped reviews"):
            cls(**FAST.get(name, {})).fit(data.user_items)
    else:
        a = cls(**FAST.get(name, {})).fit(data.user_items).recommend(np.arange(5), data.user_items[:5])
        b = cls(**FAST.get(name, {})).fit(TrainingData.from_matrix(data.user_items)).recommend(np.arange(5), data.user_items[:5])
        np.testing.assert_array_equal(a.ids, b.ids)


def test_an_unfitted_model_does_not_save_and_a_foreign_artifact_does_not_load(tmp_path, data, fitted):
    with pytest.raises(ArtifactError, match="not fitted"):
        MODELS["ease"]().save_pretrained(tmp_path / "e")
    fitted("ease").save_pretrained(tmp_path / "e")
    with pytest.raises(ArtifactError, match="holds model 'ease'"):
        MODELS["als"].from_pretrained(tmp_path / "e")


@pytest.mark.parametrize("name", ALL)
def test_a_loaded_model_survives_saving_over_its_own_folder(name, data, fitted, tmp_path):
    # loaded arrays are memory maps of the saved files (common/tensors.py): saving into the
    # folder a model was loaded from must replace the files, never truncate them under it
    fitted(name).save_pretrained(tmp_path / name)
    loaded = Recommender.from_pretrained(tmp_path / name)
    users = np.arange(N_USERS)
    before = loaded.recommend(users, data.user_items, N=5, seen=data.seen)
    loaded.save_pretrained(tmp_path / name)
    after = loaded.recommend(users, data.user_items, N=5, seen=data.seen)
    again = Recommender.from_pretrained(tmp_path / name).recommend(users, data.user_items, N=5, seen=data.seen)
    for lists in (after, again):
        np.testing.assert_array_equal(lists.ids, before.ids)
        np.testing.assert_array_equal(lists.scores, before.scores)
