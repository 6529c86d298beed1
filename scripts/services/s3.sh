# Sourced by scripts/test.sh: starts a real S3-protocol server on loopback
# for the S3 tests and exports DP_TEST_S3_* for them. (Filled in by the S3 work.)
