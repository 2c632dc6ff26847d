"""Step-label searches (OmegaPRM, Math-Shepherd) as engine-agnostic generators; see docs/annotators.md."""

from rsynth.annotators.base import (
    Batch,
    GivenTrace,
    LabelledTrace,
    Rollout,
    RolloutRequest,
    Search,
    SearchResult,
    TreeNode,
    drive,
)
from rsynth.annotators.math_shepherd import MathShepherdConfig, math_shepherd_search
from rsynth.annotators.omegaprm import OmegaPRMConfig, omegaprm_search

__all__ = [
    "Batch",
    "GivenTrace",
    "LabelledTrace",
    "MathShepherdConfig",
    "OmegaPRMConfig",
    "Rollout",
    "RolloutRequest",
    "Search",
    "SearchResult",
    "TreeNode",
    "drive",
    "math_shepherd_search",
    "omegaprm_search",
]
