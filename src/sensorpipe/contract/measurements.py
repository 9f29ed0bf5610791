"""The measurements a reading may carry: name, unit and the range a value must lie in.

Each is optional in a reading and, when present, a finite number within its range; a reading with none
of them is invalid. Settings do not declare measurements yet (issue 14): these are the defaults, the
columns `sensor_data` has (storage/migrations/0001_sensor_tables.sql checks the same ranges).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HUMIDITY", "MEASUREMENTS", "TEMPERATURE", "Measurement"]


@dataclass(frozen=True)
class Measurement:
    name: str
    unit: str
    low: float
    high: float

    def within(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def range_text(self) -> str:
        return f"[{self.low:g}, {self.high:g}]"


TEMPERATURE = Measurement("temperature", "°C", -80.0, 150.0)
HUMIDITY = Measurement("humidity", "%", 0.0, 100.0)
MEASUREMENTS = (TEMPERATURE, HUMIDITY)
