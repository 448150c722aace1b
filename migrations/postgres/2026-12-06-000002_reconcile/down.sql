DROP TABLE reconcile_cursors;
