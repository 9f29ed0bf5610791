-- Least privilege. The roles themselves are created by `db migrate` with passwords from settings, and
-- @writer@ / @reader@ stand for their quoted names. The writer inserts and reads the data tables and
-- updates only the aggregates it upserts; the reader (Grafana) only reads. Neither owns anything, so
-- neither can alter or drop a table.
grant usage on schema public to @writer@, @reader@;
grant select, insert on sensor_data, sensor_rejects, sensor_metadata to @writer@;
grant select, insert, update on sensor_data_1m to @writer@;
grant select on sensor_data, sensor_data_1m, sensor_metadata, sensor_rejects to @reader@;
