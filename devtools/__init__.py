"""Development tooling, not installed with the services: throwaway and local database servers,
development tokens, and the benchmark modules behind scripts/bench_*."""
