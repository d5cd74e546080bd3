"""The scoring contract shared by training and serving (and read by monitoring).

Training fits a model and writes a `ScoringSpec` beside it (features and types, categorical
levels, calibration, rule points, fitted tiers, routing, score scale, model shape); serving
reads the model and the spec and imports nothing from training. Both compute with the pure
functions here, so a lead gets the same probability, score, fit and interest, tier and
reasons whichever side computes them.

- `spec`: the typed, versioned spec and the config models it is made of (rules, tiers).
- `prepare`: a feature frame as the models take it.
- `rules`, `parts`, `tiers`: rule points, fit/interest/completeness, score scale and tiers.
- `estimators`: the scikit-learn parts a served model is made of (so loading needs no training).
- `explain`: per-feature contributions of any of the three model kinds.
- `registry`: the champion's version, model and spec from MLflow.
- `metrics`: ROC-AUC, PR-AUC, ECE and the rest of a model's probabilities against labels
  (training's test window, monitoring's matured cohorts).
"""
