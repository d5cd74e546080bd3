"""The models the service scores with: the MLflow `champion`, and the `challenger` scored in
shadow beside it, each swapped in without a restart.

A daemon thread per alias asks the registry every `serving.model_check_s` seconds where the
alias points. When it moved (a new champion was promoted, `leadscore train rollback`, a new
challenger from `leadscore retrain`), the new version is loaded and its Scorer built off the
request path, then swapped in with one assignment: requests in flight finish on the model they
started with. A version that fails to load (one trained before the scoring spec, say), or needs
features the feature service does not serve, leaves the current one serving (GET /model
shows why) and is not tried again until the alias moves. At start the champion must load:
without one the service does not start, and says why. A challenger is optional: none, or one
that cannot load, only means no shadow scores; its alias removed, it stops scoring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from leadscore.config import Settings
from leadscore.features.catalog import FeatureSpec, family_labels, fit_families, scoring_specs
from leadscore.scoring.registry import CHAMPION, champion_version, load_champion
from leadscore.serving.scorer import Scorer

log = logging.getLogger(__name__)


@dataclass
class ChampionWatcher:
    """The model an alias of the registered model points at (the champion unless told).
    `registered_model` (default: the lead model) and `feature_specs` (the catalog of the
    features it may read) let the account model be watched the same way; with `required`
    false a champion that is missing at start only means no scores of that model yet."""

    settings: Settings
    alias: str = CHAMPION
    registered_model: str | None = None
    feature_specs: Callable[[Settings], list[FeatureSpec]] | None = None  # None: the lead model's
    required: bool = True
    scorer: Scorer | None = field(init=False, default=None)  # None: no challenger now
    loaded_at: float = field(init=False, default=0.0)
    last_error: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._refused: str | None = None  # a version that failed to load: not retried
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"{self.alias}-watcher", daemon=True)
        if self.alias == CHAMPION and self.required:
            self.scorer, self.loaded_at = self._load(), time.time()
            log.info("%s of %s: version %s (%s)", self.alias, self.model_name, self.scorer.version,
                     self.scorer.kind)
        else:
            self.check()

    def _load(self) -> Scorer:
        model, spec, version = load_champion(self.settings, self.registered_model, alias=self.alias)
        specs = (self.feature_specs or scoring_specs)(self.settings)
        missing = sorted(set(spec.features.all) - {feature.name for feature in specs})
        if missing:
            raise ValueError(f"version {version} needs features the feature service does not serve: "
                             f"{missing}")
        return Scorer(model, spec, version, specs, self.settings.serving.max_reasons,
                      family_labels(self.settings), fit_families(self.settings))

    @property
    def model_name(self) -> str:
        """The registered model watched (the lead model's unless told)."""
        return self.registered_model or self.settings.training.registered_model

    @property
    def current(self) -> Scorer:
        """The scorer, where one must be (a required champion is loaded at start, or the start fails)."""
        if self.scorer is None:
            raise RuntimeError(f"no {self.alias} model is loaded (last error: {self.last_error})")
        return self.scorer

    @property
    def version(self) -> str | None:
        return None if self.scorer is None else self.scorer.version

    def start(self) -> ChampionWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        """Load the alias's version if it moved; True when the model changed."""
        version = None
        try:
            version = champion_version(self.settings, self.registered_model, alias=self.alias)
            if version is None:
                return self._dropped()
            if version in (self.version, self._refused):
                return False
            scorer = self._load()
        except Exception as error:  # noqa: BLE001 - keep serving the current model
            self._refused = version
            self.last_error = f"{type(error).__name__}: {error}"
            log.exception("could not load the new %s of %s; still serving version %s", self.alias,
                          self.model_name, self.version)
            return False
        log.info("%s of %s moved: version %s -> %s (%s)", self.alias, self.model_name, self.version,
                 scorer.version, scorer.kind)
        self.scorer, self.loaded_at, self.last_error, self._refused = scorer, time.time(), None, None
        return True

    def _dropped(self) -> bool:
        """The alias points nowhere: the champion keeps serving; a challenger stops."""
        if self.alias == CHAMPION or self.scorer is None:
            return False
        log.info("%s alias of %s removed: version %s no longer scores in shadow", self.alias,
                 self.model_name, self.version)
        self.scorer, self._refused = None, None
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.serving.model_check_s):
            self.check()
