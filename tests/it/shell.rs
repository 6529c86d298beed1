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
    // A bad format is a usage error, reported before the project loads.
    let o = sql(dir.path(), &["--format", "yaml", "-e", q]);
    assert_eq!(o.status.code(), Some(2));
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
    assert_eq!(stderr(&o), "error: bad.sql: syntax error at line 3, column 7: Expected: end of statement, found: base\n  3 |   frm base;\n            ^\n");
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
        assert!(
            stderr(&o).contains(&format!("error: dp sql is read-only: {what} would write to the warehouse\n  hint: pass --allow-writes")),
            "{stmt}: {}",
            stderr(&o)
        );
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
         | id     | Int64    | YES      |\n\
         | v      | Utf8View | YES      |\n\
         | n      | Int32    | YES      |\n\
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

#[test]
fn allow_writes_persist_tables_and_views() {
    let dir = built();
    let p = dir.path();
    let w = |q: &str| sql(p, &["--allow-writes", "--format", "csv", "-e", q]);
    let read = |q: &str| {
        let o = sql(p, &["--format", "csv", "-e", q]);
        ok(&o);
        stdout(&o)
    };

    // CREATE TABLE AS: one Delta commit that a new process reads.
    let o = w("create table main_marts.t2 as select id, v from base where id = 2");
    ok(&o);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", "CREATE TABLE main_marts.t2 (1 row, Delta version 0)\n"));
    assert!(p.join("warehouse/main_marts/t2/_delta_log/00000000000000000000.json").is_file());
    assert_eq!(read("select id, v from main_marts.t2"), "id,v\n2,b\n");
    // dp show reads it too.
    let o = run(p, &["show", "--inline", "select count(*) as c from main_marts.t2", "--format", "csv"]);
    ok(&o);
    assert_eq!(stdout(&o), "c\n1\n");

    // An existing name: an error, unless OR REPLACE or IF NOT EXISTS.
    let o = w("create table main_marts.t2 as select 1 as x");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: CREATE TABLE main_marts.t2: a table of that name already exists\n  hint: CREATE OR REPLACE TABLE main_marts.t2 replaces it; DROP TABLE main_marts.t2 removes it\n"
    );
    let o = w("create table if not exists main_marts.t2 as select 1 as x");
    ok(&o);
    assert_eq!(stderr(&o), "CREATE TABLE main_marts.t2: a table of that name exists, nothing done\n");
    let o = w("create or replace table main_marts.t2 as select id * 10 as id from base");
    ok(&o);
    assert_eq!(stderr(&o), "REPLACE TABLE main_marts.t2 (2 rows, Delta version 1)\n");

    // INSERT appends in one commit.
    let o = w("insert into main_marts.t2 values (30), (40)");
    ok(&o);
    assert_eq!(stdout(&o), "count\n2\n");
    assert_eq!(read("select id from main_marts.t2 order by id"), "id\n10\n20\n30\n40\n");
    let history = read("\\history main_marts.t2");
    let versions: Vec<&str> = history.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(versions, ["2", "1", "0"], "{history}");
    assert!(history.lines().nth(1).unwrap().contains("Append"), "{history}");

    // Unqualified names go to the target's schema; an empty table from columns.
    let o = w("create table t3 (a int, b varchar)");
    ok(&o);
    assert_eq!(stderr(&o), "CREATE TABLE main.t3 (0 rows, Delta version 0)\n");
    ok(&w("insert into t3 values (1, 'x')"));
    assert_eq!(read("select a, b from main.t3"), "a,b\n1,x\n");

    // CREATE VIEW stores its SQL, with table names qualified.
    let o = w("create view vv as select count(*) as n from base");
    ok(&o);
    assert_eq!(stderr(&o), "CREATE VIEW main.vv\n");
    assert_eq!(std::fs::read_to_string(p.join("warehouse/main/vv/_dp_view.sql")).unwrap(), "SELECT count(*) AS n FROM \"main\".base");
    assert_eq!(read("select n from vv"), "n\n2\n");
    assert_eq!(read("\\dt"), "schema,name,type\nmain,base,table\nmain,t3,table\nmain,vv,view\nmain_marts,fct_orders,table\nmain_marts,t2,table\n");
    let o = w("create view vv as select 1 as n");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error: CREATE VIEW main.vv: a view of that name already exists\n"), "{}", stderr(&o));
    let o = w("create temp view tv as select 1 as x; create view pv as select * from tv");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error: view pv: it reads tv, a temporary relation of this session"), "{}", stderr(&o));
    assert!(!p.join("warehouse/main/pv").exists());

    // DROP removes the folder; the kind must match.
    let o = w("drop table main_marts.t2");
    ok(&o);
    assert_eq!(stderr(&o), "DROP TABLE main_marts.t2\n");
    assert!(!p.join("warehouse/main_marts/t2").exists());
    assert!(p.join("warehouse/main_marts/fct_orders").exists());
    // The last relation of a schema takes the schema's folder with it.
    ok(&w("create table sandbox.x as select 1 as one; drop table sandbox.x"));
    assert!(!p.join("warehouse/sandbox").exists());
    let o = sql(p, &["-e", "select * from main_marts.t2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("table 'main_marts.t2' not found"), "{}", stderr(&o));
    let o = w("drop table vv");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "error: DROP TABLE main.vv: main.vv is a view\n  hint: DROP VIEW main.vv\n");
    ok(&w("drop view vv"));
    assert!(!p.join("warehouse/main/vv").exists());
    let o = w("drop view if exists vv");
    ok(&o);
    assert_eq!(stderr(&o), "DROP VIEW main.vv: it does not exist, nothing done\n");
    let o = w("drop table nope");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error: table 'main.nope' not found"), "{}", stderr(&o));

    // DELETE, UPDATE and TRUNCATE of a Delta table: one commit each.
    let o = w("delete from base where id = 1");
    ok(&o);
    assert_eq!(stderr(&o), "DELETE main.base (1 row, Delta version 1)\n");
    let o = w("update base set v = upper(v) || '!' where id = 2");
    ok(&o);
    assert_eq!(stderr(&o), "UPDATE main.base (1 row, Delta version 2)\n");
    assert_eq!(read("select id, v from base"), "id,v\n2,B!\n");
    let o = w("truncate table t3");
    ok(&o);
    assert_eq!(stderr(&o), "TRUNCATE main.t3 (1 row, Delta version 2)\n");
    assert_eq!(read("select count(*) as c from t3"), "c\n0\n");
    let o = w("delete from base where nope = 1");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("No field named nope"), "{}", stderr(&o));
    let o = w("create schema sandbox");
    ok(&o);
    assert_eq!(stderr(&o), "CREATE SCHEMA sandbox: nothing to do (a schema is the folder its first table or view creates)\n");

    // ALTER TABLE ... ADD COLUMN: one metadata commit; older rows read NULL.
    // (dbt-tests-adapter's snapshot suite adds a column to a table this way.)
    let o = w("alter table base add column full_name varchar(200) default null, add column seen timestamp");
    ok(&o);
    assert_eq!(stderr(&o), "ALTER TABLE main.base (added full_name, seen, Delta version 3)\n");
    ok(&w("update base set full_name = v || '?'"));
    assert_eq!(read("select id, v, full_name, seen from base"), "id,v,full_name,seen\n2,B!,B!?,\n");
    let o = w("alter table base add column if not exists full_name int");
    ok(&o);
    assert_eq!(stderr(&o), "ALTER TABLE main.base: nothing to do\n");
    let o = w("alter table base add column n int not null");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: ALTER TABLE main.base: column n: 'NOT NULL' is not supported\n  hint: a new column is NULL in the existing rows; fill it with UPDATE main.base SET n = ...\n"
    );
    let o = w("alter table base drop column v");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'DROP COLUMN v' is not supported\n  hint: only ADD COLUMN is"), "{}", stderr(&o));

    // Temporary tables stay in the session, without --allow-writes too.
    let o = sql(p, &["--format", "csv", "-e", "create temporary table tt as select 5 as x; select x from tt; drop table tt"]);
    ok(&o);
    assert_eq!(stdout(&o), "x\n5\n");
    assert!(!p.join("warehouse/main/tt").exists());
    // Without --allow-writes the refusal is unchanged.
    let o = sql(p, &["-e", "create table t4 as select 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error: dp sql is read-only: CREATE TABLE would write to the warehouse\n"), "{}", stderr(&o));
}

#[test]
fn long_and_wide_results_in_table_format() {
    let dir = built();
    let p = dir.path();
    let q = "\\timing off\n\\pset maxrows 4\n\\pset maxwidth 5\nselect value as n, repeat('ab', value::int) as s from generate_series(1, 10) as t(value)";
    let o = sql(p, &["-e", q]);
    ok(&o);
    assert_eq!(
        stdout(&o),
        "+----+-------+\n\
         | n  | s     |\n\
         +----+-------+\n\
         | 1  | ab    |\n\
         | 2  | abab  |\n\
         | …  | …     |\n\
         | 9  | abab… |\n\
         | 10 | abab… |\n\
         +----+-------+\n"
    );
    assert_eq!(
        stderr(&o),
        "Timing is off.\nTable rows shown: 4 (the first 2 and the last 2).\nTable values cut at 5 characters.\n(10 rows, 4 shown; \\pset maxrows 0 shows all rows; values cut at 5 characters: \\pset maxwidth 0 shows them whole)\n"
    );
    // Scripts print everything by default, and data formats never cut.
    let o = sql(p, &["-e", "select value from generate_series(1, 100) as t(value)"]);
    ok(&o);
    assert_eq!(stdout(&o).lines().count(), 104);
    let o =
        sql(p, &["--format", "csv", "-e", "\\pset maxrows 2\n\\pset maxwidth 3\nselect value, repeat('x', 50) as s from generate_series(1, 100) as t(value)"]);
    ok(&o);
    assert_eq!(stdout(&o).lines().count(), 101);
    assert!(stdout(&o).ends_with(&format!("100,{}\n", "x".repeat(50))), "{}", stdout(&o));
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

    impl Tmux {
        /// Waits for a fresh, empty prompt: keys typed while the line
        /// editor is not reading (just after Ctrl-C or Enter) may be lost.
        #[track_caller]
        fn prompt(&self) {
            self.wait("a fresh prompt", |s| s.lines().rev().find(|l| !l.trim().is_empty()).is_some_and(|l| l.trim_end() == "p>"));
        }

        /// Presses Ctrl-C until the screen shows `count` cancel messages: a
        /// Ctrl-C read together with the Enter before it (on a loaded
        /// machine) reaches the line editor as a key, not as a signal.
        #[track_caller]
        fn cancel(&self, count: usize) {
            let start = Instant::now();
            loop {
                self.keys(&["C-c"]);
                let pressed = Instant::now();
                while pressed.elapsed() < Duration::from_secs(2) {
                    if self.screen().matches("error: query cancelled").count() >= count {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                if start.elapsed() > Duration::from_secs(20) {
                    panic!("Ctrl-C did not cancel; screen:\n{}", self.screen());
                }
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
    #[ignore = "needs tmux: run by scripts/test.sh"]
    fn completion_multiline_ctrl_c_and_history() {
        assert!(tmux_available(), "tmux is required (scripts/test.sh installs it)");
        let dir = built();
        let p = dir.path();
        // A Delta table whose log cannot be read yet: opening it waits until
        // a writer opens the FIFO, as a stuck storage request would.
        let slow = p.join("warehouse/main_marts/slow");
        copy_tree(&p.join("warehouse/main_marts/fct_orders"), &slow);
        let fifo = slow.join("_delta_log/_last_checkpoint");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let t = Tmux { socket: format!("dp-test-{}", std::process::id()), session: "s".into() };
        // The pager marks its lines.
        let cmd = format!("cd '{}' && NO_COLOR=1 PAGER='sed s/^/paged:/' '{}' sql", p.display(), env!("CARGO_BIN_EXE_dp"));
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
        t.prompt();

        // Ctrl-C cancels a running query and keeps the shell.
        t.keys(&["select count(*) from generate_series(1, 100000000000);", "Enter"]);
        std::thread::sleep(Duration::from_millis(700));
        t.cancel(1);
        t.prompt();
        t.keys(&["select 'still here' as s;", "Enter"]);
        t.wait("the shell after Ctrl-C", |s| s.contains("| still here |"));

        // Ctrl-C while a Delta table is being opened (planning), through the
        // catalog and through delta_version().
        for (i, q) in ["select count(*) from main_marts.slow;", "select count(*) from delta_version('main_marts.slow', 0);"].iter().enumerate() {
            t.prompt();
            t.keys(&[q, "Enter"]);
            std::thread::sleep(Duration::from_millis(700));
            // One cancel message above already (the long query).
            t.cancel(i + 2);
            assert_eq!(t.screen().matches("error: query cancelled").count(), i + 2, "{}", t.screen());
            t.prompt();
            t.keys(&["select 'alive' as s;", "Enter"]);
            t.wait("the shell after cancelling", |s| s.matches("| alive |").count() == i + 1);
        }
        // Let the abandoned reads of the FIFO finish so the process can exit:
        // opening for writing (O_NONBLOCK, Linux) wakes the readers blocked in open.
        {
            use std::os::unix::fs::OpenOptionsExt;
            let start = Instant::now();
            while std::fs::OpenOptions::new().write(true).custom_flags(0o4000).open(&fifo).is_err() {
                assert!(start.elapsed() < Duration::from_secs(10), "no reader waits on {}", fifo.display());
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        // Long and wide results: first and last rows, cut values, a footer.
        t.prompt();
        t.keys(&["select value as n, repeat('x', 100) as s from generate_series(1, 45) as t(value);", "Enter"]);
        let screen = t.wait("the cut result", |s| s.contains("(45 rows, 40 shown in "));
        assert!(screen.contains(&format!("| 20 | {}… |\n| …  | …", "x".repeat(39))), "{screen}");
        assert!(screen.contains("values cut at 40 characters: \\pset maxwidth 0 shows them whole)"), "{screen}");
        // Taller than the terminal: through $PAGER; not with \pset pager off.
        t.prompt();
        t.keys(&["\\pset maxrows 0", "Enter"]);
        // Keys typed before the prompt is back may be dropped by the line editor.
        t.wait("\\pset maxrows", |s| s.contains("Table rows shown: all."));
        t.keys(&["select value * 1000 as big from generate_series(1, 60) as t(value);", "Enter"]);
        t.wait("the paged result", |s| s.contains("paged:| 60000 |"));
        t.prompt();
        t.keys(&["\\pset pager off", "Enter"]);
        t.wait("\\pset pager", |s| s.contains("Pager is off."));
        t.keys(&["select value * 1001 as big from generate_series(1, 60) as t(value);", "Enter"]);
        let screen = t.wait("the unpaged result", |s| s.contains("| 60060 |"));
        assert!(!screen.contains("paged:| 60060"), "{screen}");

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
