DROP TABLE push_attempts;
DROP TABLE push_deliveries;
DROP TABLE push_endpoints;
