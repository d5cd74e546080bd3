"""Marketing analyses over the middle layer: lifecycle, funnel, ROI, attribution, planning, frequency."""
