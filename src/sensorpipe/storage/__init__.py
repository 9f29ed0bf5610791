"""Storage: where readings end up (PostgreSQL/TimescaleDB, the Parquet lake on S3 or local files)."""
