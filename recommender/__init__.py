"""recommender: candidates from collaborative filtering, served as top-N lists (third stage)."""

from .als import ALS, ALSConfig
from .base import MODELS, ArtifactError, Recommender, top_n
from .interactions import InteractionConfig, interaction_matrix, interaction_weights
from .popularity import MostPopular, MostPopularConfig
from .service import RECOMMENDATION_COLUMNS, RecommendationService, ServiceConfig
from .vocabulary import Vocabulary

__all__ = [
    "ALS", "ALSConfig", "ArtifactError", "InteractionConfig", "MODELS", "MostPopular", "MostPopularConfig",
    "RECOMMENDATION_COLUMNS", "RecommendationService", "Recommender", "ServiceConfig", "Vocabulary",
    "interaction_matrix", "interaction_weights", "top_n",
]
