"""leadscore: B2B lead scoring and propensity."""
