//! Airflow's retry settings and which failures deserve a retry.

use std::time::Duration;

/// `retries`, `retry_delay`, `retry_exponential_backoff`, `max_retry_delay`
/// with Airflow's meaning: after failed try `n` (1-based) the next try waits
/// `retry_delay × 2^(n−1)` with back-off (else `retry_delay`), capped at
/// `max_retry_delay`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub retry_delay: Duration,
    pub exponential_backoff: bool,
    pub max_retry_delay: Option<Duration>,
}

impl Default for RetryPolicy {
    /// Airflow's defaults: no retries, 5 minutes apart.
    fn default() -> Self {
        RetryPolicy { retries: 0, retry_delay: Duration::from_secs(300), exponential_backoff: false, max_retry_delay: None }
    }
}

impl RetryPolicy {
    /// The wait after failed try `try_number` (1-based).
    pub fn delay(&self, try_number: u32) -> Duration {
        let d = if self.exponential_backoff {
            let factor = 2u32.saturating_pow(try_number.saturating_sub(1).min(30));
            self.retry_delay.saturating_mul(factor)
        } else {
            self.retry_delay
        };
        match self.max_retry_delay {
            Some(max) => d.min(max),
            None => d,
        }
    }
}

/// Error texts of failures that can succeed when tried again: lost
/// connections, PostgreSQL serialization failures and deadlocks, S3
/// throttling and 5xx answers, and a lost Delta commit race. Everything
/// else (a SQL error, a failed test) fails at once.
const TRANSIENT: &[&str] = &[
    "connection refused",
    "connection reset",
    "connection closed",
    "broken pipe",
    "timed out",
    "could not connect",
    "error connecting",
    "could not serialize",
    "serialization failure",
    "deadlock detected",
    "slowdown",
    "slow down",
    "throttl",
    "too many requests",
    "status 429",
    "status 500",
    "status 502",
    "status 503",
    "status 504",
    "internal server error",
    "service unavailable",
    "bad gateway",
    "temporarily unavailable",
    "another writer committed",
    "version already exists",
    "commit conflict",
    "transient:",
];

/// Whether an error message describes a transient failure.
pub fn is_transient(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    TRANSIENT.iter().any(|t| m.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airflow_backoff_formula() {
        let p = RetryPolicy { retries: 5, retry_delay: Duration::from_secs(300), exponential_backoff: true, max_retry_delay: Some(Duration::from_secs(1800)) };
        let d: Vec<u64> = (1..=5).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(d, vec![300, 600, 1200, 1800, 1800]);
        let flat = RetryPolicy { exponential_backoff: false, ..p };
        assert_eq!(flat.delay(4), Duration::from_secs(300));
    }

    #[test]
    fn transient_or_not() {
        assert!(is_transient("error connecting to PostgreSQL at 127.0.0.1:5: Connection refused (os error 111)"));
        assert!(is_transient("db error: ERROR: could not serialize access due to concurrent update"));
        assert!(is_transient("Generic S3 error: ... status 503 Service Unavailable"));
        assert!(is_transient("writing main.x: ...\n  hint: another writer committed to this table at the same time"));
        assert!(!is_transient("model stg_orders: SQL error: column \"amount2\" not found"));
        assert!(!is_transient("Failure in test not_null_orders_id: 3 rows"));
    }
}
