//! dbt's macro dependencies: the `depends_on.macros` lists of manifest.json,
//! found by a scan of each node's and macro's Jinja (its tokens, not a
//! render) that reproduces what dbt-core 1.11 records:
//!
//! - **macros** (`ManifestLoader.macro_depends_on`, `statically_extract_macro_calls`):
//!   every call `name(...)` or `pkg.name(...)` in the macro's text, in the
//!   order the calls open, but the macro's own name, `ref`/`source`/`config`
//!   and names of dbt's base context (`var`, `return`, `log`, ...); each
//!   resolved with the macro's package first, then the root project, then
//!   the other packages, then dbt's own (`MacroResolver.get_macro`). A call
//!   `adapter.dispatch('x', 'ns')` adds `x` and the macro dispatch finds for
//!   the duckdb adapter (`duckdb__x`, then `default__x`, in the search order
//!   of the project's `dispatch:` config, else the root project and `ns`).
//! - **nodes** (models, snapshots, analyses, singular tests: the macros a
//!   parse-time render calls from the node's own code, at depth 0): the same
//!   calls, in the order they return (`a(b())` records `b`, then `a`), each
//!   resolved as the node's Jinja namespace does (its package, the root
//!   project, dbt's own; `pkg.x` in package `pkg`). A scan sees every
//!   branch, where dbt records the branches its renders take; but a branch
//!   on the adapter's name alone (`{% if target.type == 'fabric' %}`,
//!   `x if target.type in ['duckdb'] else y()`) is decided as a render
//!   decides it, `target.type` being always `duckdb`.
//! - **generic tests**: the test's macro (`test_<name>`), then
//!   `get_where_subquery`, which dbt records at parse for every test but
//!   `not_null` and `unique` (rendered statically) and at compile for all.
//! - seeds: none.
//!
//! dbt's own macros (packages `dbt` and `dbt_duckdb` of dbt-duckdb 1.11,
//! `dbt_macros.txt`, taken from a dbt-written manifest) resolve by name as
//! they do in dbt, though dp's manifest does not list them.

use std::collections::HashMap;

use minijinja::machinery::{Token, WhitespaceConfig, tokenize};

use crate::project::load::Project;
use crate::project::nodes::{Macro, Node, ResourceType};

/// dbt-core 1.11's and dbt-duckdb 1.11's macros: `package name` per line.
const INTERNAL_MACROS: &str = include_str!("dbt_macros.txt");
/// dbt's global project; `dbt.x` resolves among all internal macros.
const GLOBAL: &str = "dbt";
/// `adapter.dispatch` prefixes for dbt-duckdb (`get_adapter_type_names`).
const PREFIXES: [&str; 2] = ["duckdb", "default"];
/// Calls `statically_extract_macro_calls` never records.
const STANDARD_CALLS: [&str; 3] = ["source", "ref", "config"];
/// The names of dbt's macro-resolving context (`MacroResolvingContext`):
/// a call to one of them is not a macro call.
const CONTEXT_NAMES: [&str; 24] = [
    "context",
    "dbt_version",
    "diff_of_two_dicts",
    "env_var",
    "flags",
    "fromjson",
    "fromyaml",
    "invocation_id",
    "local_md5",
    "log",
    "modules",
    "print",
    "project_name",
    "return",
    "run_started_at",
    "set",
    "set_strict",
    "target",
    "thread_id",
    "tojson",
    "toyaml",
    "var",
    "zip",
    "zip_strict",
];

/// Resolves macro names as dbt does, for one project.
pub struct MacroDeps<'p> {
    root: &'p str,
    /// dbt's own package (`dbt`), by macro name.
    dbt_only: HashMap<&'p str, String>,
    /// All internal macros, dbt_duckdb's winning over dbt's.
    internal: HashMap<&'p str, String>,
    /// The root project's and installed packages' macros.
    packages: HashMap<&'p str, HashMap<&'p str, &'p str>>,
    /// dbt's `macros_by_name`: internal < packages < root.
    by_name: HashMap<&'p str, String>,
    dispatch: HashMap<&'p str, &'p [String]>,
}

impl<'p> MacroDeps<'p> {
    pub fn new(project: &'p Project) -> Self {
        let root = project.settings.project_name.as_str();
        let mut dbt_only = HashMap::new();
        let mut adapter = HashMap::new();
        for line in INTERNAL_MACROS.lines() {
            if let Some((pkg, name)) = line.split_once(' ') {
                let uid = format!("macro.{pkg}.{name}");
                if pkg == GLOBAL {
                    dbt_only.insert(name, uid);
                } else {
                    adapter.insert(name, uid);
                }
            }
        }
        let mut internal = dbt_only.clone();
        internal.extend(adapter);
        let mut packages: HashMap<&str, HashMap<&str, &str>> = HashMap::new();
        let mut by_name = internal.clone();
        for (uid, m) in &project.macros {
            packages.entry(m.package_name.as_str()).or_default().insert(m.name.as_str(), uid.as_str());
            if m.package_name != root {
                by_name.insert(m.name.as_str(), uid.clone());
            }
        }
        for (uid, m) in &project.macros {
            if m.package_name == root {
                by_name.insert(m.name.as_str(), uid.clone());
            }
        }
        let dispatch = project.settings.dispatch.iter().map(|d| (d.macro_namespace.as_str(), d.search_order.as_slice())).collect();
        MacroDeps { root, dbt_only, internal, packages, by_name, dispatch }
    }

    /// `depends_on.macros` of a node; `compiled`: the node was compiled in
    /// this run (dbt then records the macros of the compile render too).
    pub fn of_node(&self, n: &Node, compiled: bool) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        let mut add = |uid: Option<String>| {
            if let Some(uid) = uid
                && !out.contains(&uid)
            {
                out.push(uid);
            }
        };
        match n.resource_type {
            ResourceType::Source
            | ResourceType::Exposure
            | ResourceType::UnitTest
            | ResourceType::SavedQuery
            | ResourceType::Metric
            | ResourceType::SemanticModel => {}
            _ if n.test_metadata.is_some() => {
                let t = n.test_metadata.as_ref().expect("checked");
                let test = self.get_macro(&n.package_name, &format!("test_{}", t.name));
                let builtin = matches!(test.as_deref(), Some("macro.dbt.test_not_null" | "macro.dbt.test_unique"));
                add(test);
                if compiled || !builtin {
                    add(self.node_name(&n.package_name, "get_where_subquery"));
                }
            }
            ResourceType::Model | ResourceType::Snapshot | ResourceType::Analysis | ResourceType::Test => {
                // the parse render: the code (but `{% if execute %}`), then the
                // hooks; a compile adds what `{% if execute %}` calls
                let mut later = vec![];
                for (i, code) in std::iter::once(n.raw_code.as_str()).chain(hooks(n)).enumerate() {
                    if !code.contains('(') {
                        continue;
                    }
                    let mut calls = scan(code);
                    // a render records a call when it is made: after its arguments
                    calls.sort_by_key(|c| c.close);
                    for c in calls.into_iter().filter(|c| !c.in_caller && !c.dead) {
                        let uid = self.resolve_in_node(&n.package_name, c.callee);
                        if !c.execute {
                            add(uid);
                        } else if compiled && i == 0 {
                            later.push(uid);
                        }
                    }
                }
                later.into_iter().for_each(add);
            }
            ResourceType::Seed => {
                for code in hooks(n) {
                    let mut calls = scan(code);
                    calls.sort_by_key(|c| c.close);
                    calls.into_iter().filter(|c| !c.execute && !c.in_caller && !c.dead).for_each(|c| add(self.resolve_in_node(&n.package_name, c.callee)));
                }
            }
        }
        out
    }

    /// The macro a generic test calls (`macro.dbt_utils.test_equality`).
    pub fn test_macro(&self, n: &Node) -> Option<String> {
        let t = n.test_metadata.as_ref()?;
        self.get_macro(&n.package_name, &format!("test_{}", t.name))
    }

    fn resolve_in_node(&self, package: &str, callee: Callee<'_>) -> Option<String> {
        match callee {
            Callee::Name(name) => self.node_name(package, name),
            Callee::Attr(pkg, name) => self.node_attr(pkg, name),
            Callee::Dispatch(d) => d.name.as_deref().and_then(|name| self.dispatch(name, d.namespace.as_deref(), Some(package))),
        }
    }

    /// `depends_on.macros` of a macro.
    pub fn of_macro(&self, m: &Macro) -> Vec<String> {
        let mut possible: Vec<String> = vec![];
        if m.macro_sql.contains('(') {
            for c in scan(&m.macro_sql) {
                match c.callee {
                    Callee::Name(name) => {
                        if !STANDARD_CALLS.contains(&name) && !CONTEXT_NAMES.contains(&name) && !possible.iter().any(|p| p == name) {
                            possible.push(name.to_string());
                        }
                    }
                    Callee::Attr(pkg, name) => {
                        let full = format!("{pkg}.{name}");
                        if !possible.contains(&full) {
                            possible.push(full);
                        }
                    }
                    Callee::Dispatch(d) => {
                        possible.extend(d.name.iter().cloned());
                        possible.extend(d.macro_name.iter().cloned());
                        if let Some(found) = d.name.as_deref().and_then(|name| self.dispatch(name, d.namespace.as_deref(), None)) {
                            // `macro.<pkg>.<name>` → `<pkg>.<name>`
                            possible.push(found.trim_start_matches("macro.").to_string());
                        }
                    }
                }
            }
        }
        let mut out: Vec<String> = vec![];
        for call in possible {
            if call == m.name {
                continue;
            }
            let (pkg, name) = call.split_once('.').unwrap_or((m.package_name.as_str(), call.as_str()));
            if let Some(uid) = self.get_macro(pkg, name)
                && !out.contains(&uid)
            {
                out.push(uid);
            }
        }
        out
    }

    /// dbt's `MacroResolver.get_macro`: the named package first, then by name.
    fn get_macro(&self, package: &str, name: &str) -> Option<String> {
        let local = if package == GLOBAL {
            self.dbt_only.get(name).cloned()
        } else if package == "dbt_duckdb" {
            self.internal.get(name).filter(|u| u.starts_with("macro.dbt_duckdb.")).cloned()
        } else {
            self.packages.get(package).and_then(|p| p.get(name)).map(|u| u.to_string())
        };
        local.or_else(|| self.by_name.get(name).cloned())
    }

    /// A plain name in a node's Jinja: its package, the root project, dbt's.
    fn node_name(&self, package: &str, name: &str) -> Option<String> {
        let in_pkg = |p: &str| self.packages.get(p).and_then(|m| m.get(name)).map(|u| u.to_string());
        in_pkg(package).or_else(|| in_pkg(self.root)).or_else(|| self.internal.get(name).cloned())
    }

    /// `pkg.name` in a node's Jinja.
    fn node_attr(&self, package: &str, name: &str) -> Option<String> {
        if package == GLOBAL {
            return self.internal.get(name).cloned();
        }
        self.packages.get(package).and_then(|m| m.get(name)).map(|u| u.to_string())
    }

    /// dbt's `adapter.dispatch(name, namespace)` for the duckdb adapter;
    /// `node`: the package of the node whose Jinja dispatches (its
    /// namespace), or none for a macro's static scan (dbt's resolver).
    fn dispatch(&self, name: &str, namespace: Option<&str>, node: Option<&str>) -> Option<String> {
        let order: Vec<Option<&str>> = match namespace {
            None => vec![None],
            Some(ns) => match self.dispatch.get(ns) {
                Some(o) => o.iter().map(|p| Some(p.as_str())).collect(),
                None if ns == GLOBAL || ns == "dbt_duckdb" || self.packages.contains_key(ns) => vec![Some(self.root), Some(ns)],
                None => vec![None],
            },
        };
        for pkg in order {
            for prefix in PREFIXES {
                let candidate = format!("{prefix}__{name}");
                let found = match pkg {
                    None => match node {
                        Some(p) => self.node_name(p, &candidate),
                        None => self.by_name.get(candidate.as_str()).cloned(),
                    },
                    Some(GLOBAL) => self.internal.get(candidate.as_str()).cloned(),
                    Some(p) => self.packages.get(p).and_then(|m| m.get(candidate.as_str())).map(|u| u.to_string()),
                };
                if found.is_some() {
                    return found;
                }
            }
        }
        None
    }
}

/// The SQL of a node's pre- and post-hooks (seeds' too), in that order.
fn hooks(n: &Node) -> impl Iterator<Item = &str> {
    ["pre-hook", "post-hook"].into_iter().filter_map(|k| n.config.get(k)).flat_map(|v| {
        let items: Vec<&serde_json::Value> = match v {
            serde_json::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        items.into_iter().filter_map(|h| match h {
            serde_json::Value::String(s) => Some(s.as_str()),
            serde_json::Value::Object(o) => o.get("sql").and_then(serde_json::Value::as_str),
            _ => None,
        })
    })
}

/// What a call calls.
#[derive(Debug, PartialEq)]
enum Callee<'a> {
    /// `name(...)`
    Name(&'a str),
    /// `pkg.name(...)`
    Attr(&'a str, &'a str),
    /// `adapter.dispatch(...)` with constant arguments.
    Dispatch(DispatchArgs),
}

#[derive(Debug, PartialEq, Default)]
struct DispatchArgs {
    /// The first positional argument.
    name: Option<String>,
    /// `macro_name=`.
    macro_name: Option<String>,
    /// The second positional argument or `macro_namespace=`.
    namespace: Option<String>,
}

#[derive(Debug)]
struct Call<'a> {
    callee: Callee<'a>,
    /// Token index of the closing parenthesis (the call's end).
    close: usize,
    /// Inside `{% if execute %}`: a parse render (execute false) skips it.
    execute: bool,
    /// Inside a `{% call %}` block's body: a render runs it from within the
    /// called macro (depth 1), where dbt records nothing for the node.
    in_caller: bool,
    /// In a branch a render never takes: its condition is on the adapter's
    /// name alone (`{% if target.type == 'fabric' %}`, `x if target.type in
    /// ['duckdb'] else y()`), which is always `duckdb`.
    dead: bool,
}

/// An open `{% if %}` block of [`scan`].
struct IfBlock {
    /// In its `if execute` branch.
    execute: bool,
    /// In a branch a render never takes.
    dead: bool,
    /// Whether an earlier branch is taken: yes, no, or not known statically.
    taken: Option<bool>,
}

/// The value of a condition on the adapter's name alone (`target.type ==
/// 'x'`, `!=`, `in [...]`, `not in [...]`): what every render finds, since
/// `target.type` is always [`crate::jinja::TARGET_TYPE`]. `None` for any
/// other condition.
fn adapter_condition(tokens: &[Token<'_>]) -> Option<bool> {
    let [Token::Ident("target"), Token::Dot, Token::Ident("type"), rest @ ..] = tokens else { return None };
    let is = |v: &Token<'_>| string(v).map(|v| v == crate::jinja::TARGET_TYPE);
    let in_list = |list: &[Token<'_>]| -> Option<bool> {
        let (Some(Token::BracketOpen | Token::ParenOpen), Some(Token::BracketClose | Token::ParenClose)) = (list.first(), list.last()) else { return None };
        let mut found = false;
        for (k, t) in list[1..list.len() - 1].iter().enumerate() {
            match (k % 2, t) {
                (0, v) => found |= is(v)?,
                (_, Token::Comma) => {}
                _ => return None,
            }
        }
        Some(found)
    };
    match rest {
        [Token::Eq, v] => is(v),
        [Token::Ne, v] => is(v).map(|b| !b),
        [Token::Ident("in"), list @ ..] => in_list(list),
        [Token::Ident("not"), Token::Ident("in"), list @ ..] => in_list(list).map(|b| !b),
        _ => None,
    }
}

/// The token ranges of inline `a if cond else b` branches a render never
/// takes, `cond` being on the adapter's name alone: `b` when it holds, `a`
/// when it does not.
fn dead_inline_branches(tokens: &[Token<'_>]) -> Vec<(usize, usize)> {
    let opening = |t: &Token<'_>| matches!(t, Token::ParenOpen | Token::BracketOpen | Token::BraceOpen);
    let closing = |t: &Token<'_>| matches!(t, Token::ParenClose | Token::BracketClose | Token::BraceClose);
    let stop = |t: &Token<'_>| matches!(t, Token::Comma | Token::VariableEnd | Token::BlockEnd | Token::VariableStart | Token::BlockStart | Token::Assign);
    let mut out = vec![];
    for (j, t) in tokens.iter().enumerate() {
        if !matches!(t, Token::Ident("if")) || j == 0 || matches!(tokens[j - 1], Token::BlockStart) {
            continue;
        }
        // the condition runs to `else` or to the end of the expression
        let (mut depth, mut end, mut els) = (0usize, tokens.len(), None);
        for (k, t) in tokens.iter().enumerate().skip(j + 1) {
            if opening(t) {
                depth += 1;
            } else if closing(t) && depth > 0 {
                depth -= 1;
            } else if depth == 0 && (closing(t) || stop(t)) {
                end = k;
                break;
            } else if depth == 0 && matches!(t, Token::Ident("else")) && els.is_none() {
                els = Some(k);
            }
        }
        let Some(cond) = adapter_condition(&tokens[j + 1..els.unwrap_or(end)]) else { continue };
        if cond {
            if let Some(e) = els {
                out.push((e, end));
            }
        } else {
            let mut depth = 0usize;
            let mut start = 0;
            for k in (0..j).rev() {
                let t = &tokens[k];
                if closing(t) {
                    depth += 1;
                } else if opening(t) && depth > 0 {
                    depth -= 1;
                } else if depth == 0 && (opening(t) || stop(t)) {
                    start = k + 1;
                    break;
                }
            }
            out.push((start, j));
        }
    }
    out
}

fn string<'a>(t: &'a Token<'a>) -> Option<&'a str> {
    match t {
        Token::Str(s) => Some(s),
        Token::String(s) => Some(s),
        _ => None,
    }
}

/// The calls in a template, in the order they open (dbt's `find_all(Call)`
/// pre-order). A template that does not lex is scanned up to the error.
fn scan(source: &str) -> Vec<Call<'_>> {
    let tokens: Vec<Token<'_>> = tokenize(source, false, Default::default(), WhitespaceConfig::default()).map_while(Result::ok).map(|(t, _)| t).collect();
    let ident = |i: usize| match tokens.get(i) {
        Some(Token::Ident(s)) => Some(*s),
        _ => None,
    };
    let mut calls: Vec<Call<'_>> = vec![];
    // open parentheses: the index in `calls` of the call each one opens
    let mut open: Vec<(usize, Option<usize>)> = vec![];
    // open `{% if %}` blocks
    let mut ifs: Vec<IfBlock> = vec![];
    let dead_inline = dead_inline_branches(&tokens);
    // the condition of the block tag opened at token `i` (`{% if c %}`, `{% elif c %}`)
    let condition = |i: usize| {
        let end = tokens[i..].iter().position(|t| matches!(t, Token::BlockEnd)).map_or(tokens.len(), |e| i + e);
        adapter_condition(&tokens[(i + 2).min(end)..end])
    };
    // open `{% call %}` bodies, and whether a `{% call ... %}` tag is open
    let (mut callers, mut call_tag) = (0usize, false);
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::BlockEnd if call_tag => {
                call_tag = false;
                callers += 1;
            }
            Token::BlockStart => match ident(i + 1) {
                Some("call") => call_tag = true,
                Some("endcall") => callers = callers.saturating_sub(1),
                Some("if") => {
                    let cond = condition(i);
                    ifs.push(IfBlock {
                        execute: ident(i + 2) == Some("execute") && matches!(tokens.get(i + 3), Some(Token::BlockEnd | Token::Ident("and"))),
                        dead: cond == Some(false),
                        taken: cond,
                    });
                }
                Some(tag @ ("elif" | "else")) => {
                    let cond = if tag == "elif" { condition(i) } else { Some(true) };
                    if let Some(top) = ifs.last_mut() {
                        top.execute = false;
                        (top.dead, top.taken) = match top.taken {
                            Some(true) => (true, Some(true)),
                            Some(false) => (cond == Some(false), cond),
                            None => (false, None),
                        };
                    }
                }
                Some("endif") => {
                    ifs.pop();
                }
                _ => {}
            },
            Token::ParenOpen => {
                let callee = callee(&tokens, i, &ident);
                let execute = ifs.iter().any(|b| b.execute);
                let dead = ifs.iter().any(|b| b.dead) || dead_inline.iter().any(|(a, b)| (*a..*b).contains(&i));
                let slot = callee.map(|c| {
                    calls.push(Call { callee: c, close: usize::MAX, execute, in_caller: callers > 0, dead });
                    calls.len() - 1
                });
                open.push((i, slot));
            }
            Token::ParenClose => {
                if let Some((start, Some(slot))) = open.pop() {
                    calls[slot].close = i;
                    if let Callee::Dispatch(d) = &mut calls[slot].callee {
                        *d = dispatch_args(&tokens[start + 1..i]);
                    }
                }
            }
            _ => {}
        }
    }
    calls
}

/// What the `(` at token `i` calls, if it is a call of a name or `pkg.name`.
fn callee<'a>(tokens: &[Token<'a>], i: usize, ident: &dyn Fn(usize) -> Option<&'a str>) -> Option<Callee<'a>> {
    let name = ident(i.checked_sub(1)?)?;
    let before = i.checked_sub(2).map(|j| &tokens[j]);
    match before {
        Some(Token::Dot) => {
            let pkg = ident(i.checked_sub(3)?)?;
            // `a.b.c(...)` is no macro call; nor `x[0].y(...)`
            if i >= 4 && matches!(tokens[i - 4], Token::Dot) {
                return None;
            }
            match (pkg, name) {
                ("adapter", "dispatch") => Some(Callee::Dispatch(DispatchArgs::default())),
                ("adapter", _) => None,
                _ => Some(Callee::Attr(pkg, name)),
            }
        }
        // a filter `x | f(...)` or a test `x is t(...)`
        Some(Token::Pipe) => None,
        Some(Token::Ident("is")) => None,
        Some(Token::Ident("not")) if i >= 3 && matches!(tokens[i - 3], Token::Ident("is")) => None,
        // `{% macro name(args) %}`, `{% test name(args) %}`
        Some(Token::Ident("macro" | "test")) if i >= 3 && matches!(tokens[i - 3], Token::BlockStart) => None,
        // `{% call(args) m() %}`: the caller's parameters
        Some(Token::BlockStart) if name == "call" => None,
        _ => Some(Callee::Name(name)),
    }
}

/// The constant arguments of `adapter.dispatch(...)` (tokens between its
/// parentheses).
fn dispatch_args(tokens: &[Token<'_>]) -> DispatchArgs {
    let mut d = DispatchArgs::default();
    let mut depth = 0usize;
    let mut args: Vec<&[Token<'_>]> = vec![];
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
            Token::ParenClose | Token::BracketClose | Token::BraceClose => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                args.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < tokens.len() {
        args.push(&tokens[start..]);
    }
    let mut positional = 0;
    for a in args {
        match a {
            [Token::Ident(k), Token::Assign, v] => match *k {
                "macro_name" => d.macro_name = string(v).map(String::from),
                "macro_namespace" => d.namespace = string(v).map(String::from),
                _ => {}
            },
            [Token::Ident(_), Token::Assign, ..] => {}
            _ => {
                match positional {
                    0 => d.name = a.first().and_then(string).map(String::from),
                    1 if a.len() == 1 => d.namespace = string(&a[0]).map(String::from),
                    _ => {}
                }
                positional += 1;
            }
        }
    }
    if d.name.is_none() {
        d.name = d.macro_name.clone();
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calls found in `src` (with `live`: only those outside dead branches), as text.
    fn calls(src: &str, live: bool) -> Vec<String> {
        scan(src)
            .into_iter()
            .filter(|c| !(live && c.dead))
            .map(|c| match c.callee {
                Callee::Name(n) => n.to_string(),
                Callee::Attr(p, n) => format!("{p}.{n}"),
                Callee::Dispatch(d) => format!("dispatch({:?},{:?})", d.name, d.namespace),
            })
            .collect()
    }

    fn names(src: &str) -> Vec<String> {
        calls(src, false)
    }

    #[test]
    fn scans_calls_as_dbt_finds_them() {
        assert_eq!(
            names("{% macro m(a=x()) %}{{ a(b(), c.d()) | f(g()) }}{% if x is t(1) %}{{ e.f.g() }}{% endif %}{% endmacro %}"),
            ["x", "a", "b", "c.d", "g"]
        );
        assert_eq!(names("{% call(row) statement('main') %}{{ caller() }}{% endcall %}"), ["statement", "caller"]);
        assert_eq!(
            names("{{ return(adapter.dispatch('star', 'dbt_utils')(x)) }}{{ adapter.get_relation(a) }}"),
            ["return", "dispatch(Some(\"star\"),Some(\"dbt_utils\"))"]
        );
        assert_eq!(names("{{ adapter.dispatch(macro_name='m', macro_namespace='p')() }}"), ["dispatch(Some(\"m\"),Some(\"p\"))"]);
        assert_eq!(names("select 'x(' {# y() #} from t"), Vec::<String>::new());
    }

    fn live(src: &str) -> Vec<String> {
        calls(src, true)
    }

    #[test]
    fn branches_on_the_adapter_name_are_decided_as_a_render_decides_them() {
        // dbt_project_evaluator's all_days and int_all_graph_resources
        assert_eq!(live("{% set d = \"current_date()\" if target.type in [\"duckdb\"] else dbt.current_timestamp() %}{{ dbt.dateadd(d) }}"), ["dbt.dateadd"]);
        assert_eq!(live("{% set d = a() ~ b() if target.type != 'duckdb' else c(x(), 1) %}"), ["c", "x"]);
        assert_eq!(live("{{ f(a() if target.type == 'postgres', b()) }}"), ["f", "b"]);
        assert_eq!(live("{% if target.type == 'fabric' %}{{ m() }}{% elif target.type in ['duckdb', 'x'] %}{{ n() }}{% else %}{{ o() }}{% endif %}"), ["n"]);
        assert_eq!(live("{% if target.type not in ['fabric'] %}{{ m() }}{% else %}{{ n() }}{% endif %}{{ p() }}"), ["m", "p"]);
        // a condition on anything else is not decided: both branches count
        assert_eq!(live("{% if target.name == 'x' %}{{ m() }}{% else %}{{ n() }}{% endif %}{{ q() if var('v') else r() }}"), ["m", "n", "q", "var", "r"]);
        assert_eq!(
            live("{% if flag %}{% if target.type == 'fabric' %}{{ m() }}{% endif %}{% elif target.type == 'duckdb' %}{{ n() }}{% else %}{{ o() }}{% endif %}"),
            ["n", "o"]
        );
    }
}
