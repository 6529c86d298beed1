//! Aggregates of one shape are parsed and prepared once.
//!
//! A suite's thousands of aggregates come from a few dozen expectation
//! kinds, so most differ from another one only in their literals:
//! `sum(case when ... id >= 5 and id <= 100 ...)` and `... id >= -3 and id
//! <= 250 ...`. Parsing, type coercion and simplification cost far more than
//! the scan that feeds them, and none of them depends on a literal's value,
//! only on its type. So each aggregate's text is split into a *template*,
//! its literals (quoted strings and numbers, with their sign when unary)
//! replaced by typed placeholders `$1`, `$2`, ..., and the literals
//! themselves. The first aggregate of a template (and of its literals'
//! types) is parsed in full, and the template is accepted only if putting
//! that aggregate's literals into the parsed template gives exactly what
//! parsing the aggregate gives; the template is then prepared once (with
//! typed placeholders: coercion only looks at types, and the simplifier's
//! rewrites hold for every value of a placeholder). Each later aggregate of
//! the template takes the prepared template with its own literals put in,
//! and literal casts that coercion added folded into literals. Anything
//! this does not read as the SQL parser does (escaped or prefixed strings,
//! numbers out of range, `$` in the text, a cast that fails) goes through
//! the full parse, which reports errors as before.

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{Cast, Expr};
use std::collections::HashMap;
use std::sync::Arc;

use super::scan::Preparer;

/// Prepared templates by their text and their literals' types (`None`:
/// the template does not stand for its aggregates; they are parsed in full).
#[derive(Default)]
pub(super) struct Shapes {
    prepared: HashMap<(String, Vec<DataType>), Option<Expr>>,
}

impl Shapes {
    /// `text` parsed and prepared: from its template's preparation when
    /// one was accepted, else in full.
    pub fn prepare(&mut self, state: &SessionState, schema: &DFSchema, preparer: &Preparer, text: &str) -> datafusion::error::Result<Expr> {
        let Some((template, literals)) = templated(text).filter(|(_, l)| !l.is_empty()) else {
            return preparer.prepare(state.create_logical_expr(text, schema)?);
        };
        let key = (template, literals.iter().map(ScalarValue::data_type).collect::<Vec<_>>());
        if let Some(entry) = self.prepared.get(&key) {
            if let Some(e) = entry.as_ref().and_then(|t| instantiate(t.clone(), &literals)) {
                return preparer.resimplify(e);
            }
            return preparer.prepare(state.create_logical_expr(text, schema)?);
        }
        let parsed = state.create_logical_expr(text, schema)?;
        let accepted = (|| {
            let t = typed(state.create_logical_expr(&key.0, schema).ok()?, &literals)?;
            (substitute(t.clone(), &literals)? == parsed).then_some(())?;
            preparer.prepare(t).ok()
        })();
        self.prepared.insert(key, accepted);
        preparer.prepare(parsed)
    }
}

/// `text` with its literals replaced by `$1`, `$2`, ..., and the literals;
/// `None` when a literal is written in a way not read here as the SQL
/// parser reads it.
fn templated(text: &str) -> Option<(String, Vec<ScalarValue>)> {
    if text.contains('$') {
        return None;
    }
    let b = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let mut out = String::with_capacity(text.len());
    let mut literals = vec![];
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' {
            // E'..', N'..', X'..' and escaped quotes are the parser's to read
            if i > 0 && ident(b[i - 1]) {
                return None;
            }
            let end = i + 1 + text[i + 1..].find('\'')?;
            let s = &text[i + 1..end];
            if b.get(end + 1) == Some(&b'\'') || s.contains('\\') {
                return None;
            }
            literals.push(ScalarValue::Utf8(Some(s.to_string())));
            out.push_str(&format!("${}", literals.len()));
            i = end + 1;
        } else if c == b'"' {
            let end = i + 1 + text[i + 1..].find('"')?;
            out.push_str(&text[i..=end]);
            i = end + 1;
        } else if (c.is_ascii_digit() && (i == 0 || !(ident(b[i - 1]) || b[i - 1] == b'.')))
            || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit) && unary(&text[..i]))
        {
            let start = i;
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let mut float = false;
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                float = true;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                float = true;
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < b.len() && (ident(b[i]) || b[i] == b'.') {
                return None;
            }
            let n = &text[start..i];
            literals.push(if float { ScalarValue::Float64(Some(n.parse().ok()?)) } else { ScalarValue::Int64(Some(n.parse().ok()?)) });
            out.push_str(&format!("${}", literals.len()));
        } else {
            let ch = text[i..].chars().next()?;
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    Some((out, literals))
}

/// Whether a `-` after `before` is a sign (the SQL parser folds it into
/// the number) rather than a subtraction.
fn unary(before: &str) -> bool {
    let t = before.trim_end();
    match t.chars().last() {
        None => true,
        Some(c) if "(,=<>+-*/%|".contains(c) => true,
        Some(c) if c.is_ascii_alphabetic() => {
            let word = t.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
            ["and", "or", "not", "between", "when", "then", "else", "in", "like", "case"].iter().any(|k| word.eq_ignore_ascii_case(k))
        }
        _ => false,
    }
}

/// The placeholders of a parsed template typed as their literals.
fn typed(e: Expr, literals: &[ScalarValue]) -> Option<Expr> {
    replace_placeholders(e, literals, |p, v| Expr::Placeholder(Placeholder { id: p.id, field: Some(Arc::new(Field::new("", v.data_type(), true))) }))
}

fn index(id: &str, literals: &[ScalarValue]) -> Option<usize> {
    let k: usize = id.strip_prefix('$')?.parse().ok()?;
    (1..=literals.len()).contains(&k).then(|| k - 1)
}

/// The placeholders replaced by their literals.
fn substitute(e: Expr, literals: &[ScalarValue]) -> Option<Expr> {
    replace_placeholders(e, literals, |_, v| Expr::Literal(v.clone(), None))
}

/// Every placeholder `$k` replaced by `with(placeholder, literals[k - 1])`;
/// `None` if one has no literal.
fn replace_placeholders(e: Expr, literals: &[ScalarValue], with: impl Fn(Placeholder, &ScalarValue) -> Expr) -> Option<Expr> {
    let mut ok = true;
    let e = e
        .transform(|x| match x {
            Expr::Placeholder(p) => match index(&p.id, literals) {
                Some(k) => Ok(Transformed::yes(with(p, &literals[k]))),
                None => {
                    ok = false;
                    Ok(Transformed::no(Expr::Placeholder(p)))
                }
            },
            x => Ok(Transformed::no(x)),
        })
        .ok()?
        .data;
    ok.then_some(e)
}

/// A prepared template with the literals put in, and the casts coercion
/// put around them folded (as the simplifier folds them when it sees the
/// literal); `None` if a cast fails.
fn instantiate(prepared: Expr, literals: &[ScalarValue]) -> Option<Expr> {
    let e = substitute(prepared, literals)?;
    e.transform_up(|x| match x {
        Expr::Cast(Cast { expr, field }) => match *expr {
            Expr::Literal(v, _) => Ok(Transformed::yes(Expr::Literal(v.cast_to(field.data_type())?, None))),
            other => Ok(Transformed::no(Expr::Cast(Cast { expr: Box::new(other), field }))),
        },
        x => Ok(Transformed::no(x)),
    })
    .ok()
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<(String, Vec<String>)> {
        templated(s).map(|(t, l)| (t, l.iter().map(|v| format!("{v:?}")).collect()))
    }

    #[test]
    fn literals_become_numbered_placeholders() {
        let (tpl, lits) = t("not coalesce((id >= 5 and id <= -3), false) and x in ('a', 'b c') and y > 2.5e3").unwrap();
        assert_eq!(tpl, "not coalesce((id >= $1 and id <= $2), false) and x in ($3, $4) and y > $5");
        assert_eq!(lits, ["Int64(5)", "Int64(-3)", "Utf8(\"a\")", "Utf8(\"b c\")", "Float64(2500)"]);
        // a sign after a keyword, a subtraction after a name or a parenthesis
        assert_eq!(t("x between -1 and 2").unwrap().0, "x between $1 and $2");
        assert_eq!(t("a-1 > (b) -2").unwrap().0, "a-$1 > (b) -$2");
        // digits of names and quoted names stay
        assert_eq!(t("c1 > \"col 2\" and t.x2 = 3").unwrap().0, "c1 > \"col 2\" and t.x2 = $1");
    }

    #[test]
    fn what_is_not_read_here_is_left_to_the_parser() {
        for s in ["x = 'it''s'", "x = E'a'", "x = 'a\\b'", "x = $1", "x > 99999999999999999999", "x > 1abc"] {
            assert_eq!(templated(s), None, "{s}");
        }
        assert_eq!(t("count(*)").unwrap(), ("count(*)".to_string(), vec![]));
    }

    #[test]
    fn a_shape_prepared_once_gives_what_each_aggregate_gives_prepared_alone() {
        use datafusion::arrow::datatypes::{DataType, Schema};
        let ctx = datafusion::prelude::SessionContext::new();
        let state = ctx.state();
        let schema = DFSchema::try_from(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("status", DataType::Utf8View, true),
            Field::new("day", DataType::Date32, true),
        ]))
        .unwrap();
        let preparer = Preparer::new(&state, &schema);
        let mut shapes = Shapes::default();
        let texts = [
            "not coalesce((id is null), false) and not coalesce((id >= 5 and id <= 100), false)",
            "not coalesce((id is null), false) and not coalesce((id >= -7 and id <= 250), false)",
            "not coalesce((amount >= 10 and amount <= 99.5), false)",
            "not coalesce((amount >= 0 and amount <= 12.25), false)",
            "not coalesce((status in ('paid', 'open')), false)",
            "not coalesce((status in ('x', 'y')), false)",
            "day >= '2024-01-01'",
            "day >= '2025-02-03'",
            "approx_percentile_cont(id, 0.5)",
            "approx_percentile_cont(id, 0.9)",
        ];
        for text in texts {
            let alone = preparer.prepare(state.create_logical_expr(text, &schema).unwrap()).unwrap();
            let shared = shapes.prepare(&state, &schema, &preparer, text).unwrap();
            assert_eq!(shared.to_string(), alone.to_string(), "{text}");
        }
        // every template after its first aggregate was served prepared
        assert!(shapes.prepared.values().filter(|v| v.is_some()).count() >= 4, "{:?}", shapes.prepared.keys());
    }
}
