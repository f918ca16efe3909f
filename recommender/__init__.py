"""recommender: candidates from collaborative filtering, served as top-N lists (third stage).

Every model - :class:`MostPopular`, :class:`ItemKNN`, :class:`EASE`, :class:`ALS`, :class:`BPR`
and the emotion-aware LightGBM re-ranker :class:`~recommender.hybrid.HybridRanker` - implements
one interface (:mod:`recommender.base`): ``fit(TrainingData)``, ``recommend(...) ->
Recommendations``, ``similar_items``, ``save_pretrained`` / ``Recommender.from_pretrained``.
Serving by external IDs: :class:`RecommendationService`. Evaluation helpers:
:mod:`recommender.splits`, :mod:`recommender.metrics`.
"""

from emorec.common.errors import ArtifactError

from .als import ALS, ALSConfig
from .base import MODELS, Recommendations, Recommender, model_class, top_n
from .bpr import BPR, BPRConfig
from .config import ModelConfig
from .ease import EASE, EASEConfig
from .hybrid import HybridConfig, HybridRanker
from .interactions import InteractionConfig, interaction_matrix, interaction_weights
from .itemknn import ItemKNN, ItemKNNConfig
from .popularity import MostPopular, MostPopularConfig
from .service import MODEL_NAMES, RECOMMENDATION_COLUMNS, RecommendationService, ServiceConfig
from .training_data import TrainingData
from .vocabulary import Vocabulary

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "MODELS",
    "MODEL_NAMES",
    "RECOMMENDATION_COLUMNS",
    "ALSConfig",
    "ArtifactError",
    "BPRConfig",
    "EASEConfig",
    "HybridConfig",
    "HybridRanker",
    "InteractionConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "ModelConfig",
    "MostPopular",
    "MostPopularConfig",
    "RecommendationService",
    "Recommendations",
    "Recommender",
    "ServiceConfig",
    "TrainingData",
    "Vocabulary",
    "interaction_matrix",
    "interaction_weights",
    "model_class",
    "top_n",
]
