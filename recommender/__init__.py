"""recommender: candidates from collaborative filtering, served as top-N lists (third stage).

Models (one per file, same ``implicit``-style interface, see :mod:`recommender.base`):
:class:`MostPopular`, :class:`ItemKNN`, :class:`EASE`, :class:`ALS`, :class:`BPR`; the
emotion-aware LightGBM re-ranker :class:`~recommender.hybrid.HybridRanker`. Serving by external
IDs: :class:`RecommendationService`. Evaluation helpers: :mod:`recommender.splits`,
:mod:`recommender.metrics`.
"""

from .als import ALS, ALSConfig
from .base import MODELS, ArtifactError, Recommender, top_n
from .bpr import BPR, BPRConfig
from .ease import EASE, EASEConfig
from .hybrid import HybridConfig, HybridRanker
from .interactions import InteractionConfig, interaction_matrix, interaction_weights
from .itemknn import ItemKNN, ItemKNNConfig
from .popularity import MostPopular, MostPopularConfig
from .service import MODEL_NAMES, RECOMMENDATION_COLUMNS, RecommendationService, ServiceConfig
from .vocabulary import Vocabulary

__all__ = [
    "ALS", "ALSConfig", "ArtifactError", "BPR", "BPRConfig", "EASE", "EASEConfig", "HybridConfig", "HybridRanker", "InteractionConfig", "ItemKNN",
    "ItemKNNConfig", "MODELS", "MODEL_NAMES", "MostPopular", "MostPopularConfig", "RECOMMENDATION_COLUMNS",
    "RecommendationService", "Recommender", "ServiceConfig", "Vocabulary", "interaction_matrix",
    "interaction_weights", "top_n",
]
