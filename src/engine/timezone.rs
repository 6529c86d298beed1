//! `x AT TIME ZONE 'zone'` with the meaning PostgreSQL and DuckDB give it
//! (dbt_date's `convert_timezone` and hand-written models rely on it):
//!
//! - a timestamp without time zone is a wall-clock time in `zone`: the
//!   result is that instant, a timestamp with time zone (UTC);
//! - a timestamp with time zone is an instant: the result is the wall-clock
//!   time in `zone`, a timestamp without time zone.
//!
//! DataFusion's own `AT TIME ZONE` only relabels the zone, so
//! `ts at time zone 'UTC' at time zone 'America/Los_Angeles'` kept UTC's
//! wall clock. [`super::rewrite`] turns the operator into a call of
//! `dp_at_time_zone` (this function). A wall-clock time that does not exist
//! in `zone` (a daylight-saving gap) is read an hour later, as PostgreSQL
//! does.

use std::sync::Arc;

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use datafusion::arrow::array::{Array, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

pub const NAME: &str = "dp_at_time_zone";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AtTimeZone {
    signature: Signature,
}

impl Default for AtTimeZone {
    fn default() -> Self {
        AtTimeZone { signature: Signature::any(2, Volatility::Immutable) }
    }
}

fn has_zone(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, Some(_)))
}

impl ScalarUDFImpl for AtTimeZone {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(if has_zone(&arg_types[0]) {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        } else {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let zone = match &args.args[1] {
            ColumnarValue::Scalar(s) => match s.try_as_str().flatten() {
                Some(z) => z.to_string(),
                None => return exec_err!("AT TIME ZONE needs a time zone name, got {s}"),
            },
            ColumnarValue::Array(_) => return exec_err!("AT TIME ZONE needs a constant time zone name"),
        };
        let tz: Tz = match zone.parse() {
            Ok(tz) => tz,
            Err(_) => return exec_err!("AT TIME ZONE: unknown time zone '{zone}' (use an IANA name such as 'America/Los_Angeles' or 'UTC')"),
        };
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(args.number_rows)?;
        let to_local = has_zone(input.data_type());
        let micros = cast(&input, &DataType::Timestamp(TimeUnit::Microsecond, if to_local { Some("UTC".into()) } else { None }))?;
        let micros = micros.as_any().downcast_ref::<TimestampMicrosecondArray>().expect("cast to microseconds");
        let out: TimestampMicrosecondArray = micros
            .iter()
            .map(|v| {
                let t = DateTime::from_timestamp_micros(v?)?;
                Some(if to_local {
                    t.with_timezone(&tz).naive_local().and_utc().timestamp_micros()
                } else {
                    let wall = t.naive_utc();
                    let at = tz.from_local_datetime(&wall).earliest().or_else(|| tz.from_local_datetime(&(wall + chrono::Duration::hours(1))).earliest())?;
                    at.timestamp_micros()
                })
            })
            .collect();
        let out = if to_local { out } else { out.with_timezone("UTC") };
        Ok(if scalar { ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?) } else { ColumnarValue::Array(Arc::new(out)) })
    }
}
