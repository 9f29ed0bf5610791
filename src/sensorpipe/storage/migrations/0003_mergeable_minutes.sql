-- The one-minute aggregates are merged by the writer in the transaction that stores the readings
-- (storage/minutes.py), so they never trail the readings. An average does not merge when some readings
-- lack the value: each measurement keeps its count and sum beside it.
alter table sensor_data_1m
    add column count_temperature integer          not null default 0,
    add column sum_temperature   double precision not null default 0,
    add column count_humidity    integer          not null default 0,
    add column sum_humidity      double precision not null default 0;

-- Minutes written before: counts and sums from their averages (exact unless some readings of the minute
-- lacked the value) ...
update sensor_data_1m
set count_temperature = case when avg_temperature is null then 0 else readings end,
    sum_temperature = coalesce(avg_temperature * readings, 0),
    count_humidity = case when avg_humidity is null then 0 else readings end,
    sum_humidity = coalesce(avg_humidity * readings, 0);

-- ... and every minute sensor_data still holds computed again from it: the aggregates query this replaces
-- trailed the readings, so its last minutes may lack readings that are stored.
insert into sensor_data_1m as a (bucket, sensor_id, readings, count_temperature, sum_temperature, avg_temperature,
                                 min_temperature, max_temperature, count_humidity, sum_humidity, avg_humidity,
                                 min_humidity, max_humidity)
select date_bin('1 minute', time, timestamptz '2000-01-01 00:00:00+00'), sensor_id, count(*),
       count(temperature), coalesce(sum(temperature), 0), avg(temperature), min(temperature), max(temperature),
       count(humidity), coalesce(sum(humidity), 0), avg(humidity), min(humidity), max(humidity)
from sensor_data
group by 1, 2
on conflict (sensor_id, bucket) do update
set readings = excluded.readings,
    count_temperature = excluded.count_temperature, sum_temperature = excluded.sum_temperature,
    avg_temperature = excluded.avg_temperature, min_temperature = excluded.min_temperature,
    max_temperature = excluded.max_temperature, count_humidity = excluded.count_humidity,
    sum_humidity = excluded.sum_humidity, avg_humidity = excluded.avg_humidity,
    min_humidity = excluded.min_humidity, max_humidity = excluded.max_humidity, updated_at = now();
