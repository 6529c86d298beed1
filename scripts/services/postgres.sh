# Sourced by scripts/test.sh: starts a throwaway PostgreSQL 15 cluster on
# loopback for the Postgres tests and exports DP_TEST_PG_* for them.
# (Filled in by the Postgres work.)
