"""Settings: a typo in config/leadscore.yaml is an error that names it."""

import pytest
import yaml

from leadscore.config import DEFAULT_SETTINGS_FILE, load_settings


def test_the_shipped_settings_load(settings):
    assert settings.training.primary_metric == "pr_auc"


@pytest.mark.parametrize(("section", "key"), [("training", "horizon_dayz"), ("features", "windows")])
def test_an_unknown_key_is_reported_with_its_place(tmp_path, section, key):
    config = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    config[section][key] = 1
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "leadscore.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=f"{section}.{key}: Extra inputs are not permitted"):
        load_settings(tmp_path / "config" / "leadscore.yaml")
