"""The model the service scores with: the MLflow `champion`, swapped in without a restart.

A daemon thread asks the registry every `serving.model_check_s` seconds where the
alias points. When it moved (a new champion was promoted, or `leadscore train
rollback`), the new version is loaded and its Scorer built off the request path, then
swapped in with one assignment: requests in flight finish on the model they started
with, and a version that fails to load leaves the current one serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from leadscore.config import Settings
from leadscore.features.catalog import scoring_specs
from leadscore.serving.scorer import Scorer
from leadscore.training.register import champion_version, load_champion

log = logging.getLogger(__name__)


@dataclass
class ChampionWatcher:
    settings: Settings
    on_change: Callable[[Scorer], None] | None = None
    scorer: Scorer = field(init=False)
    loaded_at: float = field(init=False)
    last_error: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.scorer = self._load()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)

    def _load(self) -> Scorer:
        model, metadata, version = load_champion(self.settings)
        self.loaded_at = time.time()
        return Scorer(model, metadata, version, scoring_specs(self.settings),
                      self.settings.serving.max_reasons)

    def start(self) -> ChampionWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        """Load the champion if the alias moved; True when the model changed."""
        try:
            version = champion_version(self.settings)
            if version is None or version == self.scorer.version:
                return False
            scorer = self._load()
        except Exception as error:  # noqa: BLE001 - keep serving the current model
            self.last_error = f"{type(error).__name__}: {error}"
            log.exception("could not load the new champion; still serving version %s",
                          self.scorer.version)
            return False
        log.info("champion moved: version %s -> %s (%s)", self.scorer.version, scorer.version, scorer.kind)
        self.scorer, self.last_error = scorer, None
        if self.on_change:
            self.on_change(scorer)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.serving.model_check_s):
            self.check()
