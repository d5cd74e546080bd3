"""Marketing's analyses over the middle layer: lifecycle, funnel, ROI, attribution, planning,
contact frequency, and the dashboard's panels."""
