"""The real-vs-fake perceptual study: definition and trial plan (`spec`), SQLite storage (`store`),
statistics (`stats`, pure) and the web routes (`routes`, needs FastAPI)."""

from .spec import StudySpec, Trial, load_study, plan_trials
from .stats import Proportion, fooled_rates, proportion, standard_error, wilson_interval
from .store import AnswerError, StudyStore

__all__ = [
    "AnswerError", "Proportion", "StudySpec", "StudyStore", "Trial", "fooled_rates", "load_study", "plan_trials",
    "proportion", "standard_error", "wilson_interval",
]
