//! Backslash commands: an enum that parses itself and prints its own help.

use super::ShellError;
use super::format::Format;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Quit,
    Describe(Option<String>),
    ListTables(Option<String>),
    ListSchemas,
    Timing(Option<bool>),
    PSet(Option<String>, Option<String>),
    Output(Option<String>),
    Include(String),
    History(String),
}

impl Command {
    /// Every command, in the order `\?` lists them.
    pub const ALL: [Command; 10] = [
        Command::Describe(None),
        Command::ListTables(None),
        Command::ListSchemas,
        Command::History(String::new()),
        Command::Timing(None),
        Command::PSet(None, None),
        Command::Output(None),
        Command::Include(String::new()),
        Command::Help,
        Command::Quit,
    ];

    /// (syntax, description) for `\?`.
    pub fn usage(&self) -> (&'static str, &'static str) {
        match self {
            Command::Describe(_) => ("\\d [name]", "list relations, or the columns and types of one"),
            Command::ListTables(_) => ("\\dt [pattern]", "list tables and views (glob: marts.*, *orders)"),
            Command::ListSchemas => ("\\dn", "list schemas"),
            Command::History(_) => ("\\history schema.table", "versions of a Delta table (see delta_version())"),
            Command::Timing(_) => ("\\timing [on|off]", "toggle the elapsed time in the table footer"),
            Command::PSet(_, _) => (
                "\\pset [format NAME | maxrows N | maxwidth N | pager on|off]",
                "output format (table, csv, tsv, json, ndjson, markdown); table rows and characters per value shown (0: all); the pager",
            ),
            Command::Output(_) => ("\\o [file]", "send results to a file (no file: back to stdout)"),
            Command::Include(_) => ("\\i file.sql", "run the statements of a file"),
            Command::Help => ("\\?", "this help"),
            Command::Quit => ("\\q", "quit (Ctrl-D also quits)"),
        }
    }

    pub fn parse(line: &str) -> Result<Command, ShellError> {
        let line = line.trim().trim_end_matches(';').trim();
        let mut words = line.split_whitespace();
        let head = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        let arg = || rest.first().map(|s| s.to_string());
        let need = |what: &str| -> Result<String, ShellError> {
            rest.first().map(|s| s.to_string()).ok_or_else(|| ShellError::Usage(format!("{head} needs {what}\n  hint: \\? lists the commands")))
        };
        Ok(match head {
            "\\?" | "\\h" | "\\help" => Command::Help,
            "\\q" | "\\quit" => Command::Quit,
            "\\d" | "\\d+" => Command::Describe(arg()),
            "\\dt" | "\\dt+" | "\\dv" => Command::ListTables(arg()),
            "\\dn" => Command::ListSchemas,
            "\\timing" => Command::Timing(match arg().as_deref() {
                None => None,
                Some("on") => Some(true),
                Some("off") => Some(false),
                Some(o) => return Err(ShellError::Usage(format!("\\timing takes on or off, not '{o}'"))),
            }),
            "\\pset" => Command::PSet(arg(), rest.get(1).map(|s| s.to_string())),
            "\\o" | "\\out" => Command::Output(arg()),
            "\\i" | "\\include" => Command::Include(need("a file")?),
            "\\history" => Command::History(need("a table, e.g. \\history marts.fct_orders")?),
            other => {
                let names: Vec<&str> = Command::ALL.iter().map(|c| c.usage().0.split_whitespace().next().unwrap_or("")).collect();
                let hint = crate::util::suggest(other, names.iter().copied()).map(|s| format!("did you mean {s}? ")).unwrap_or_default();
                return Err(ShellError::Usage(format!("unknown command {other}\n  hint: {hint}\\? lists the commands")));
            }
        })
    }

    /// The help text, generated from [`Command::ALL`].
    pub fn help() -> String {
        let width = Command::ALL.iter().map(|c| c.usage().0.len()).max().unwrap_or(0);
        let mut s = String::from("Backslash commands:\n");
        for c in &Command::ALL {
            let (syntax, what) = c.usage();
            s.push_str(&format!("  {syntax:<width$}  {what}\n"));
        }
        s.push_str("\nSQL statements end with ';'. Tables: schema.table or a bare name found in one schema;\n");
        s.push_str("time travel: select * from delta_version('schema.table', 3). Ctrl-C cancels a query, Ctrl-D quits.\n");
        s
    }
}

/// Parses `\pset format NAME`.
pub fn pset_format(value: Option<&str>) -> Result<Format, ShellError> {
    let v = value.ok_or_else(|| ShellError::Usage(format!("\\pset format needs a name: {}", Format::NAMES)))?;
    v.parse().map_err(ShellError::Usage)
}

/// Parses `\pset maxrows N` / `\pset maxwidth N`: 0 means no limit.
pub fn pset_count(key: &str, value: Option<&str>) -> Result<Option<usize>, ShellError> {
    let n: usize = value.unwrap_or("").parse().map_err(|_| ShellError::Usage(format!("\\pset {key} needs a number (0: no limit), e.g. \\pset {key} 100")))?;
    Ok(if n == 0 { None } else { Some(n) })
}

/// Parses `\pset pager [on|off]` (no value toggles).
pub fn pset_switch(key: &str, value: Option<&str>, current: bool) -> Result<bool, ShellError> {
    match value {
        None => Ok(!current),
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(v) => Err(ShellError::Usage(format!("\\pset {key} takes on or off, not '{v}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_documents_every_command() {
        assert_eq!(Command::parse("\\d marts.fct_orders").unwrap(), Command::Describe(Some("marts.fct_orders".into())));
        assert_eq!(Command::parse("\\dt").unwrap(), Command::ListTables(None));
        assert_eq!(Command::parse("\\timing off").unwrap(), Command::Timing(Some(false)));
        assert_eq!(Command::parse("\\pset format csv").unwrap(), Command::PSet(Some("format".into()), Some("csv".into())));
        assert!(Command::parse("\\dx").unwrap_err().to_string().contains("unknown command \\dx"));
        let help = Command::help();
        for c in &Command::ALL {
            assert!(help.contains(c.usage().0), "{}", c.usage().0);
        }
    }
}
