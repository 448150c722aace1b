DROP INDEX IF EXISTS push_deliveries_change;
DROP TABLE change_horizon;
