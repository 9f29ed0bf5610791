"""Read a sensorpipe process's Prometheus endpoint, as Prometheus would: for `top` and for checks."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sensorpipe.errors import SensorpipeError


class ScrapeError(SensorpipeError):
    """The endpoint did not answer with metrics; the message names it and what to check, `reason` the cause."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Scrape:
    """The samples of one scrape, e.g. `sensorpipe_bridge_received_total` with its labels and value."""

    url: str
    samples: tuple[Sample, ...]
    families: dict[str, str]
    """Metric family name → type (counter, gauge, histogram ...), including families without samples yet."""

    @property
    def names(self) -> set[str]:
        """Every series name Prometheus can store from this endpoint (`_total`, `_bucket` ... included).

        A labelled counter has no sample before its first label value, yet queries may name it already:
        names come from the declared families, not only from the samples present.
        """
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("", "_count", "_sum", "_created"),
        }
        declared = {name + s for name, kind in self.families.items() for s in suffixes.get(kind, ("",))}
        return declared | {sample.name for sample in self.samples}

    def total(self, name: str, **labels: str) -> float | None:
        """Sum of the samples named `name` whose labels include `labels`; None when there are none."""
        values = [s.value for s in self._matching(name, labels)]
        return sum(values) if values else None

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """Values of `name` summed per value of one label, e.g. rows per sink."""
        sums: dict[str, float] = {}
        for sample in self._matching(name, {}):
            key = sample.labels.get(label, "")
            sums[key] = sums.get(key, 0.0) + sample.value
        return sums

    def _matching(self, name: str, labels: dict[str, str]) -> Iterable[Sample]:
        return (s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


_WILDCARD = {"0.0.0.0", "::", ""}  # noqa: S104  # a process listening everywhere is scraped on loopback


def scrape(host: str, port: int, timeout_s: float = 2.0) -> Scrape:
    """GET http://host:port/metrics and parse it; a clear `ScrapeError` when nothing answers."""
    url = f"http://{'127.0.0.1' if host in _WILDCARD else host}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError) as e:
        cause = getattr(e, "reason", e)
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        raise ScrapeError(
            f"no metrics at {url} ({reason}): is the process running with that metrics port?", reason
        ) from e
    families = list(text_string_to_metric_families(text))
    samples = tuple(sample for family in families for sample in family.samples)
    return Scrape(url, samples, {family.name: family.type for family in families})


__all__ = ["Scrape", "ScrapeError", "scrape"]
