"""Read queries that more than one view runs (Grafana's dashboards and alerts, `sensorpipe top`), written once."""

from __future__ import annotations

_SENSORS = """\
with recursive sensors (sensor_id) as (
    (select sensor_id from sensor_data order by sensor_id limit 1)
    union all
    select (select d.sensor_id from sensor_data d where d.sensor_id > s.sensor_id order by d.sensor_id limit 1)
    from sensors s
    where s.sensor_id is not null
)"""
# A loose index scan on the primary key (sensor_id, time): one index probe per sensor, however many
# readings the table holds, where `select distinct` or `distinct on` would read them all.

SENSOR_IDS = f"""\
{_SENSORS}
select sensor_id from sensors where sensor_id is not null order by sensor_id"""
"""Every sensor that has a reading, one row each."""

LATEST_READINGS = f"""\
{_SENSORS}
select s.sensor_id, m.name, m.location, r.time, r.temperature, r.humidity,
       extract(epoch from now() - r.time)::double precision as age_s
from sensors s
cross join lateral (
    select d.time, d.temperature, d.humidity
    from sensor_data d
    where d.sensor_id = s.sensor_id
    order by d.time desc
    limit 1
) r
left join sensor_metadata m on m.sensor_id = s.sensor_id
order by s.sensor_id"""
"""The latest reading of every sensor and its age in seconds, one row per sensor."""

__all__ = ["LATEST_READINGS", "SENSOR_IDS"]
