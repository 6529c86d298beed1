//! The dbt version dp stands in for (`dbt_version` in Jinja, the artifacts'
//! `dbt_version`), and `require-dbt-version` ranges checked against it.

/// The dbt version whose behaviour and artifacts dp follows.
pub const DBT_VERSION: &str = "1.11.0";

/// Whether `version` meets every comparator of a `require-dbt-version`
/// entry list (`[">=1.3.0", "<2.0.0"]`, `"1.5.0"`); `Err` names an entry
/// that is not a version range.
pub fn satisfies(version: &str, required: &[String]) -> Result<bool, String> {
    let have = parts(version).ok_or_else(|| format!("'{version}' is not a version"))?;
    for r in required {
        for c in r.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (op, v) = match c.find(|ch: char| ch.is_ascii_digit()) {
                Some(i) => (c[..i].trim(), c[i..].trim()),
                None => return Err(format!("'{c}' is not a version range")),
            };
            let want = parts(v).ok_or_else(|| format!("'{c}' is not a version range"))?;
            let ok = match op {
                ">=" => have >= want,
                ">" => have > want,
                "<=" => have <= want,
                "<" => have < want,
                "" | "=" | "==" => have == want,
                "!=" => have != want,
                _ => return Err(format!("'{c}' has an unknown comparison '{op}'")),
            };
            if !ok {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// `1.10.6` → (1, 10, 6); missing parts are 0; a pre-release suffix is dropped.
fn parts(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+', 'a', 'b', 'r']).next()?;
    let mut it = core.split('.').map(|p| p.trim().parse::<u64>());
    let major = it.next()?.ok()?;
    let minor = it.next().transpose().ok()?.unwrap_or(0);
    let patch = it.next().transpose().ok()?.unwrap_or(0);
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_dbt_writes_them() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(satisfies("1.11.0", &s(&[">=1.10.6", "<3.0.0"])), Ok(true));
        assert_eq!(satisfies("1.11.0", &s(&[">=1.3.0, <2.0.0"])), Ok(true));
        assert_eq!(satisfies("1.11.0", &s(&[">=2.0"])), Ok(false));
        assert_eq!(satisfies("1.11.0", &s(&["1.11.0"])), Ok(true));
        assert_eq!(satisfies("1.11.0", &s(&["<1.11"])), Ok(false));
        assert_eq!(satisfies("1.11.0", &s(&["~1.2"])), Err("'~1.2' has an unknown comparison '~'".into()));
        assert_eq!(satisfies("1.11.0", &s(&["latest"])), Err("'latest' is not a version range".into()));
    }
}
