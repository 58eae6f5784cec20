"""Online anomaly detection for the monitored metrics' time series."""
