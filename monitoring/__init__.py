"""Monitoring: how the served scores turned out, and whether the world still looks like the
data the champion learnt from (`leadscore monitor`, the admin page /monitor).

- `cohorts`: matured cohorts: logged scores whose horizon has passed, labelled by the outcomes.
- `metrics`: ROC-AUC, PR-AUC, ECE, reliability bins, conversion by decile and tier, per model
  version; `cohort_metrics` is what promotion on live evidence reads.
- `drift`: population stability index, missing rates, unknown categories.
- `early`: the opportunities already arrived against the probabilities served, before the horizon.
- `arrivals`: a CUSUM of the opportunities reported a day against the live rate before.
- `operations`: MQLs pushed and their fate, sales dispositions, quarantined records.
- `alerts`: the breaches of `monitoring.thresholds`, each posted once to `monitoring.alert_webhook`.
- `inputs` reads what the rest computes on; `report` puts it together; `tracking` logs a report
  to MLflow; `plots` draws it for the page.

Monitoring reads the live path (score log, event log, labels) and the scoring contract; it
imports nothing of serving, segments or training (serving imports it for its page).
"""
