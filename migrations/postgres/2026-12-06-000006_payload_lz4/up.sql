-- The stored event body (about 5 KB of JSON) is compressed with lz4 instead of pglz when it
-- is written. Under `perf` at 64 deliveries in flight, pglz took 3.2 % of the whole machine's
-- CPU (inside the claim's INSERT), lz4 0.05 %; bodies take about 2.4 KB instead of 1.9 KB
-- (docs/benchmarks.md, "Where the machine's time goes"). Rows already stored keep pglz.
--
-- A Postgres built without lz4 refuses the method (feature_not_supported): the column then
-- keeps the default and the migration still applies. EXECUTE defers the statement's parsing
-- to here, inside the handler's reach.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE stripe_events ALTER COLUMN payload SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this Postgres has no lz4: stripe_events.payload stays pglz-compressed';
END
$$;
