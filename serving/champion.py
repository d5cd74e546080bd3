"""The model the service scores with: the MLflow `champion`, swapped in without a restart.

A daemon thread asks the registry every `serving.model_check_s` seconds where the
alias points. When it moved (a new champion was promoted, or `leadscore train
rollback`), the new version is loaded and its Scorer built off the request path, then
swapped in with one assignment: requests in flight finish on the model they started
with. A version that fails to load (one trained before the scoring spec, say), or needs
features the feature service does not serve, leaves the current one serving (GET /model
shows why) and is not tried again until the alias moves. At start there is no current
one: the service does not start, and says why.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from leadscore.config import Settings
from leadscore.features.catalog import family_labels, scoring_specs
from leadscore.scoring.registry import champion_version, load_champion
from leadscore.serving.scorer import Scorer

log = logging.getLogger(__name__)


@dataclass
class ChampionWatcher:
    settings: Settings
    scorer: Scorer = field(init=False)
    loaded_at: float = field(init=False)
    last_error: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.scorer = self._load()
        self.loaded_at = time.time()
        self._refused: str | None = None  # a version that failed to load: not retried
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)

    def _load(self) -> Scorer:
        model, spec, version = load_champion(self.settings)
        specs = scoring_specs(self.settings)
        missing = sorted(set(spec.features.all) - {feature.name for feature in specs})
        if missing:
            raise ValueError(f"version {version} needs features the feature service does not serve: "
                             f"{missing}")
        return Scorer(model, spec, version, specs, self.settings.serving.max_reasons,
                      family_labels(self.settings))

    def start(self) -> ChampionWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        """Load the champion if the alias moved; True when the model changed."""
        version = None
        try:
            version = champion_version(self.settings)
            if version is None or version in (self.scorer.version, self._refused):
                return False
            scorer = self._load()
        except Exception as error:  # noqa: BLE001 - keep serving the current model
            self._refused = version
            self.last_error = f"{type(error).__name__}: {error}"
            log.exception("could not load the new champion; still serving version %s",
                          self.scorer.version)
            return False
        log.info("champion moved: version %s -> %s (%s)", self.scorer.version, scorer.version, scorer.kind)
        self.scorer, self.loaded_at, self.last_error, self._refused = scorer, time.time(), None, None
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.serving.model_check_s):
            self.check()
