"""What the processes tell operators about themselves: Prometheus metrics."""
