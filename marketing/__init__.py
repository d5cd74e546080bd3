"""Marketing's analyses: contact frequency, the funnel and campaign ROI, and the dashboard's panels."""
