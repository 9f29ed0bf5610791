-- The pipeline's tables (docs/design.md "Storage layout"). Plain PostgreSQL; TimescaleDB features are added
-- by `db migrate` afterwards where the extension exists (see storage/timescale.py).

-- One row per valid reading. (sensor_id, time) is the identity of a reading: replays are idempotent.
create table sensor_data (
    time            timestamptz      not null,
    sensor_id       text             not null,
    temperature     double precision,
    humidity        double precision,
    raw_data        jsonb            not null,
    time_source     text             not null default 'payload',
    kafka_partition integer,
    kafka_offset    bigint,
    ingested_at     timestamptz      not null default now(),
    constraint sensor_data_pkey primary key (sensor_id, time),
    constraint sensor_data_time_source check (time_source in ('payload', 'received')),
    constraint sensor_data_temperature_range check (temperature between -80 and 150),
    constraint sensor_data_humidity_range check (humidity between 0 and 100),
    constraint sensor_data_has_a_value check (temperature is not null or humidity is not null)
);
comment on column sensor_data.time_source is
    'payload: the reading''s own timestamp; received: none was given, the bridge''s receive time was used';
-- The primary key serves "latest reading per sensor" and "time range per sensor" (backward index scans);
-- this one serves time ranges over all sensors, cheaply on append-mostly data.
create index sensor_data_time_brin on sensor_data using brin (time);

create table sensor_metadata (
    sensor_id    text primary key,
    name         text,
    location     text,
    kind         text,
    latitude     double precision,
    longitude    double precision,
    installed_at timestamptz,
    attributes   jsonb       not null default '{}'::jsonb,
    updated_at   timestamptz not null default now()
);

-- One-minute aggregates per sensor; the stream job upserts a window again when late data changes it.
create table sensor_data_1m (
    bucket          timestamptz      not null,
    sensor_id       text             not null,
    readings        integer          not null,
    avg_temperature double precision,
    min_temperature double precision,
    max_temperature double precision,
    avg_humidity    double precision,
    min_humidity    double precision,
    max_humidity    double precision,
    updated_at      timestamptz      not null default now(),
    constraint sensor_data_1m_pkey primary key (sensor_id, bucket)
);
create index sensor_data_1m_bucket on sensor_data_1m (bucket);

-- The dead-letter table: what could not become a reading, why, and where it came from in Kafka.
-- `element` is the index inside a gateway batch (0 for a single reading); the Kafka coordinates and
-- the element make a reject unique, so a replayed batch does not record it twice.
create table sensor_rejects (
    id              bigint generated always as identity primary key,
    received_at     timestamptz not null default now(),
    reason          text        not null,
    detail          text,
    payload         bytea       not null,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    element         integer     not null default 0,
    constraint sensor_rejects_source unique nulls not distinct (kafka_topic, kafka_partition, kafka_offset, element)
);
create index sensor_rejects_received_at on sensor_rejects (received_at);
create index sensor_rejects_reason on sensor_rejects (reason, received_at);
