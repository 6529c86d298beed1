//! `dp sql`: the non-interactive modes through the binary (every format,
//! -e/-f/stdin, errors, read-only mode, time travel, backslash commands)
//! and the REPL through a pseudo-terminal (tmux).

use crate::common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

const TOML: &str = "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n[models.marts]\nschema = \"marts\"\n";

/// `base` in `main`; `fct_orders` in `main_marts` (dbt's schema naming).
fn built() -> tempfile::TempDir {
    let dir = project(&[
        ("warehouse.toml", TOML),
        ("models/base.sql", "select id, v from (values (1, 'a'), (2, 'b')) as t(id, v)"),
        ("models/marts/fct_orders.sql", "select id, v, {{ var('n', 1) }} as n from {{ ref('base') }}"),
    ]);
    ok(&run(dir.path(), &["run"]));
    dir
}

fn sql(dir: &Path, args: &[&str]) -> Output {
    let mut a = vec!["sql"];
    a.extend_from_slice(args);
    run(dir, &a)
}

fn sql_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = dp().current_dir(dir).arg("sql").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn every_output_format() {
    let dir = built();
    let q = "select id, v from base order by id";
    let cases = [
        ("table", "+----+---+\n| id | v |\n+----+---+\n| 1  | a |\n| 2  | b |\n+----+---+\n"),
        ("csv", "id,v\n1,a\n2,b\n"),
        ("tsv", "id\tv\n1\ta\n2\tb\n"),
        ("json", "[{\"id\":1,\"v\":\"a\"},{\"id\":2,\"v\":\"b\"}]\n"),
        ("ndjson", "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n"),
        ("markdown", "| id | v |\n|----|---|\n| 1  | a |\n| 2  | b |\n"),
    ];
    for (format, expected) in cases {
        let o = sql(dir.path(), &["--format", format, "-e", q]);
        ok(&o);
        assert_eq!(stdout(&o), expected, "--format {format}");
        // The footer (row count, elapsed time) is for people: table format, on stderr.
        assert_eq!(stderr(&o).contains("(2 rows in "), format == "table", "--format {format}: {}", stderr(&o));
    }
    let o = sql(dir.path(), &["--format", "yaml", "-e", q]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown format 'yaml': use table, csv, tsv, json, ndjson or markdown"), "{}", stderr(&o));
}

#[test]
fn file_stdin_and_several_statements() {
    let dir = built();
    let p = dir.path();
    std::fs::write(p.join("q.sql"), "-- two statements\nselect count(*) as c from base;\nselect 'x;y' as s;\n").unwrap();
    let o = sql(p, &["--format", "csv", "-f", "q.sql"]);
    ok(&o);
    assert_eq!(stdout(&o), "c\n2\ns\nx;y\n");
    let o = sql_stdin(p, &["--format", "csv"], "select max(id) as m from base; select 1 as one");
    ok(&o);
    assert_eq!(stdout(&o), "m\n2\none\n1\n");
    // A bare model name resolves to the one schema holding it.
    let o = sql(p, &["--format", "csv", "-e", "select count(*) as c from fct_orders"]);
    ok(&o);
    assert_eq!(stdout(&o), "c\n2\n");
    // ... but not a CTE of the same name.
    let o = sql(p, &["--format", "csv", "-e", "with fct_orders as (select 7 as c) select c from fct_orders"]);
    ok(&o);
    assert_eq!(stdout(&o), "c\n7\n");
}

#[test]
fn syntax_error_shows_position_and_token() {
    let dir = built();
    let p = dir.path();
    std::fs::write(p.join("bad.sql"), "select 1 as a;\nselect id\n  frm base;\nselect 3;\n").unwrap();
    let o = sql(p, &["--format", "csv", "-f", "bad.sql"]);
    assert_eq!(o.status.code(), Some(1));
    // Statements before the error ran; none after it.
    assert_eq!(stdout(&o), "a\n1\n");
    assert_eq!(
        stderr(&o),
        "error: bad.sql: syntax error at line 3, column 7: Expected: end of statement, found: base\n  3 |   frm base;\n            ^\n"
    );
}

#[test]
fn unknown_table_lists_close_names() {
    let dir = built();
    let o = sql(dir.path(), &["-e", "select * from fct_order"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error: table 'main.fct_order' not found\n  hint: did you mean main_marts.fct_orders?"), "{}", stderr(&o));
    let o = sql(dir.path(), &["-e", "\\d bse"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not found\n  hint: did you mean main.base?"), "{}", stderr(&o));
}

#[test]
fn read_only_unless_allow_writes() {
    let dir = built();
    let p = dir.path();
    for (stmt, what) in [
        ("insert into base values (3, 'c')", "INSERT"),
        ("delete from base", "DELETE"),
        ("create table t2 as select 1", "CREATE TABLE"),
        ("drop table base", "DROP TABLE"),
    ] {
        let o = sql(p, &["-e", stmt]);
        assert_eq!(o.status.code(), Some(1), "{stmt}");
        assert!(stderr(&o).contains(&format!("error: dp sql is read-only: {what} would write to the warehouse\n  hint: pass --allow-writes")), "{stmt}: {}", stderr(&o));
    }
    // Temporary views, COPY (query) TO a file, SET, SHOW, EXPLAIN and DESCRIBE are reads.
    let o = sql(
        p,
        &[
            "--format",
            "csv",
            "-e",
            "create temp view tv as select id * 10 as x from base; select x from tv order by x; \
             copy (select * from tv) to 'out.parquet'; set datafusion.execution.batch_size = 100; \
             show datafusion.execution.batch_size; describe base; explain select 1",
        ],
    );
    ok(&o);
    assert!(stdout(&o).starts_with("x\n10\n20\n"), "{}", stdout(&o));
    assert!(p.join("out.parquet").exists());
    let o = sql(p, &["--format", "csv", "-e", "create external table ext stored as parquet location 'out.parquet'; select count(*) as c from ext"]);
    ok(&o);
    assert_eq!(stdout(&o), "c\n2\n");
    // COPY into the warehouse folder is a write.
    let o = sql(p, &["-e", "copy (select 1) to 'warehouse/main/x.parquet'"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("would write inside the warehouse"), "{}", stderr(&o));
}

#[test]
fn delta_time_travel_and_history() {
    let dir = built();
    let p = dir.path();
    ok(&run(p, &["run", "--vars", "{n: 2}"]));
    let o = sql(
        p,
        &[
            "--format",
            "csv",
            "-e",
            "select max(n) as n from delta_version('main_marts.fct_orders', 0); select max(n) as n from delta_version('fct_orders', 1); \
             select max(n) as n from main_marts.fct_orders",
        ],
    );
    ok(&o);
    assert_eq!(stdout(&o), "n\n1\nn\n2\nn\n2\n");
    let o = sql(p, &["--format", "csv", "-e", "\\history main_marts.fct_orders"]);
    ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "version,timestamp,operation,parameters,rows");
    assert!(lines[1].starts_with("1,") && lines[1].contains(",WRITE,") && lines[1].ends_with(",2"), "{out}");
    assert!(lines[2].starts_with("0,"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    let o = sql(p, &["-e", "select * from delta_version('main_marts.fct_orders', 9)"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("delta_version: table main_marts.fct_orders at version 9"), "{}", stderr(&o));
    let o = sql(p, &["-e", "\\history main_marts.fct_order"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Delta table main_marts.fct_order not found"), "{}", stderr(&o));
}

#[test]
fn backslash_commands() {
    let dir = built();
    let p = dir.path();
    let o = sql(p, &["-e", "\\d fct_orders"]);
    ok(&o);
    assert_eq!(
        stdout(&o),
        "+--------+----------+----------+\n\
         | column | type     | nullable |\n\
         +--------+----------+----------+\n\
         | id     | Int64    | NO       |\n\
         | v      | Utf8View | NO       |\n\
         | n      | Int64    | NO       |\n\
         +--------+----------+----------+\n"
    );
    let o = sql(p, &["--format", "csv", "-e", "\\dt\n\\dt main_marts.*\n\\dn"]);
    ok(&o);
    assert_eq!(
        stdout(&o),
        "schema,name,type\nmain,base,table\nmain_marts,fct_orders,table\nschema,name,type\nmain_marts,fct_orders,table\nschema,tables\nmain,1\nmain_marts,1\n"
    );
    // \pset, \o and \i.
    std::fs::write(p.join("inc.sql"), "select 5 as five;\n").unwrap();
    let o = sql(p, &["-e", "\\pset format ndjson\n\\o out.json\n\\i inc.sql\n\\o\nselect 6 as six;"]);
    ok(&o);
    assert_eq!(stdout(&o), "{\"six\":6}\n");
    assert_eq!(std::fs::read_to_string(p.join("out.json")).unwrap(), "{\"five\":5}\n");
    let o = sql(p, &["-e", "\\?"]);
    ok(&o);
    for c in ["\\d [name]", "\\dt [pattern]", "\\dn", "\\history", "\\timing", "\\pset", "\\o [file]", "\\i file.sql", "\\q"] {
        assert!(stdout(&o).contains(c), "{c}: {}", stdout(&o));
    }
    let o = sql(p, &["-e", "\\dx"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown command \\dx"), "{}", stderr(&o));
}

/// The REPL in a pseudo-terminal: tmux runs `dp sql`, send-keys types,
/// capture-pane reads the screen.
mod repl {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    struct Tmux {
        socket: String,
        session: String,
    }

    impl Tmux {
        fn tmux(&self) -> Command {
            let mut c = Command::new("tmux");
            c.args(["-L", &self.socket]);
            c
        }

        /// Key names (Enter, Tab, C-c) or literal text.
        fn keys(&self, keys: &[&str]) {
            for k in keys {
                let special = matches!(*k, "Enter" | "Tab" | "Escape") || k.starts_with("C-");
                // tmux takes an argument ending in ';' as a command separator.
                let arg = match k.strip_suffix(';') {
                    Some(head) => format!("{head}\\;"),
                    None => k.to_string(),
                };
                let mut c = self.tmux();
                c.args(["send-keys", "-t", &self.session]);
                if !special {
                    c.arg("-l");
                }
                c.arg(&arg);
                assert!(c.status().unwrap().success(), "tmux send-keys {arg}; screen:\n{}", self.screen());
            }
        }

        fn screen(&self) -> String {
            let o = self.tmux().args(["capture-pane", "-p", "-J", "-S", "-200", "-t", &self.session]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).into_owned()
        }

        /// Waits (at most 20 s) until the screen satisfies `f`.
        #[track_caller]
        fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
            let start = Instant::now();
            loop {
                let s = self.screen();
                if f(&s) {
                    return s;
                }
                if start.elapsed() > Duration::from_secs(20) {
                    panic!("timed out waiting for {what}; screen:\n{s}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    impl Drop for Tmux {
        fn drop(&mut self) {
            let _ = self.tmux().args(["kill-server"]).status();
        }
    }

    fn tmux_available() -> bool {
        Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success())
    }

    #[test]
    fn completion_multiline_ctrl_c_and_history() {
        if !tmux_available() {
            assert!(std::env::var_os("CI").is_none(), "tmux is required in CI (apt-get install -y tmux)");
            eprintln!("skipping: tmux is not installed");
            return;
        }
        let dir = built();
        let p = dir.path();
        let t = Tmux { socket: format!("dp-test-{}", std::process::id()), session: "s".into() };
        let cmd = format!("cd '{}' && NO_COLOR=1 '{}' sql", p.display(), env!("CARGO_BIN_EXE_dp"));
        let st = t.tmux().args(["new-session", "-d", "-s", &t.session, "-x", "160", "-y", "50", &cmd]).status().unwrap();
        assert!(st.success());
        t.wait("the prompt", |s| s.contains("p> "));

        // Multi-line: nothing runs until the `;`.
        t.keys(&["select 40 +", "Enter"]);
        t.keys(&["2 as answer", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(!t.screen().contains("| answer"), "ran before ';': {}", t.screen());
        t.keys(&[";", "Enter"]);
        t.wait("the multi-line result", |s| s.contains("| 42     |") && s.contains("(1 row"));

        // Tab completes a table name (unique prefix) and a column of it.
        t.keys(&["select count(*) as c from fct_ord", "Tab"]);
        t.wait("table completion", |s| s.contains("from fct_orders"));
        t.keys(&[";", "Enter"]);
        t.wait("the completed query", |s| s.contains("| 2 |"));
        t.keys(&["select main_marts.fct_orders.", "Tab", "Tab"]);
        t.wait("column candidates", |s| s.contains("main_marts.fct_orders.id") && s.contains("main_marts.fct_orders.n"));
        t.keys(&["C-c"]);

        // Ctrl-C cancels a running query and keeps the shell.
        t.keys(&["select count(*) from generate_series(1, 100000000000);", "Enter"]);
        std::thread::sleep(Duration::from_millis(700));
        t.keys(&["C-c"]);
        t.wait("the cancel message", |s| s.contains("error: query cancelled"));
        t.keys(&["select 'still here' as s;", "Enter"]);
        t.wait("the shell after Ctrl-C", |s| s.contains("| still here |"));

        // Ctrl-D exits; the history file keeps the statements.
        t.keys(&["C-d"]);
        let start = Instant::now();
        while t.tmux().args(["has-session", "-t", &t.session]).status().is_ok_and(|s| s.success()) {
            assert!(start.elapsed() < Duration::from_secs(20), "Ctrl-D did not exit: {}", t.screen());
            std::thread::sleep(Duration::from_millis(100));
        }
        let history = std::fs::read_to_string(p.join("target/.dp_sql_history")).unwrap();
        assert!(history.contains("select 'still here' as s;"), "{history}");
    }
}
