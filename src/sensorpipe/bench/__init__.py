"""`sensorpipe bench`'s pure parts: accounting, statistics, the `--max` search, the report and its plot.

Each module does one job without touching a service, so the arithmetic a performance claim rests on is
unit-tested; the runner that drives the real pipeline feeds them what it measured.
"""
