"""Watching the pipeline: metrics, scrapes, PromQL, Prometheus and Grafana files, `top` and `tail`."""
