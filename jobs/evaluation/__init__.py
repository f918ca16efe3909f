"""Offline A/B evaluation of recommender variants (``emorec evaluate``).

Modules: :mod:`.config` (variants and protocol), :mod:`.beyond` (coverage, novelty,
diversity, popularity bias, emotional fit), :mod:`.stats` (paired bootstrap, tests,
correction, minimum detectable effect), :mod:`.breakdown` (segments, activity, item
popularity), :mod:`.verdict`, :mod:`.report` (HTML) and :mod:`.runner` (the orchestration).
"""

from .config import ExperimentConfig, VariantConfig, load_config
from .runner import EvaluationInputs, EvaluationResult, inputs_from_workspace, run_evaluation, write_outputs

__all__ = ["EvaluationInputs", "EvaluationResult", "ExperimentConfig", "VariantConfig", "inputs_from_workspace",
           "load_config", "run_evaluation", "write_outputs"]
