//! An incremental `merge` of a few scattered updates and new rows into a big table: by
//! deletion vectors (dp's default, `src/materialize/dv_merge.rs`) against deltalake's MERGE
//! (`DP_DELETION_VECTORS=off`), in the same run, with the same rows checked after each.
//!
//!     cargo bench --bench merge
//!     cargo bench --bench merge -- --rows 1000000 --repeat 5
//!
//! Options (after `--`): `--rows N` (the table, default 9,500,000: `fct_orders` at scale 100);
//! `--every K` (every K-th id is updated, default 50: 2 %); `--new M` (new ids, default 1 % of
//! N); `--repeat R` (default 3); `--recent P` (the model gets `incremental_predicates` that
//! let only the newest P % of the table's ids match, as a predicate on a recent date does: both
//! merges then skip the older files by their statistics, and the older updates are inserted
//! beside their rows); `--exclude-amount` (`merge_exclude_columns=['amount']`: a matched row keeps
//! its amount, which the merge by vectors takes from the table's row); `--keep`. `DP_BIN` overrides
//! the dp binary.
//!
//! Each repeat rebuilds both tables (`--full-refresh`, not timed), then times one incremental
//! `dp run` of each, alternating which goes first. The merge's source is computed from
//! `range()`, so the time is the merge's: finding the rows to replace and writing the new ones.
//! Prints the medians, peak RSS and the ratio against the target: deletion vectors at most a
//! quarter of MERGE's time. No timing assertion.

mod common;

use common::*;
use std::path::Path;

struct Opts {
    rows: u64,
    every: u64,
    new: Option<u64>,
    repeat: usize,
    recent: Option<u64>,
    exclude_amount: bool,
    keep: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts { rows: 9_500_000, every: 50, new: None, repeat: 3, recent: None, exclude_amount: false, keep: false };
    each_option(|k, val| match k {
        "--rows" => o.rows = val().parse().expect("--rows N"),
        "--every" => o.every = val().parse().expect("--every K"),
        "--new" => o.new = Some(val().parse().expect("--new M")),
        "--repeat" => o.repeat = val().parse().expect("--repeat R"),
        "--recent" => o.recent = Some(val().parse().expect("--recent P")),
        "--exclude-amount" => o.exclude_amount = true,
        "--keep" => o.keep = true,
        s => eprintln!("merge bench: ignoring unknown argument {s}"),
    });
    o
}

fn write_project(dir: &Path, o: &Opts) {
    let new = o.new.unwrap_or(o.rows / 100);
    let mut extra = match o.recent {
        Some(p) => format!(", incremental_predicates=['DBT_INTERNAL_DEST.id >= {}']", o.rows - o.rows * p / 100),
        None => String::new(),
    };
    if o.exclude_amount {
        extra.push_str(", merge_exclude_columns=['amount']");
    }
    let model = format!(
        "{{{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge'{extra}) }}}}\n\
         {{% if is_incremental() %}}\n\
         select id, 'b' as v, id * 3 as amount from (select value * {every} as id from range(0, {updated})) as t\n\
         union all\n\
         select value as id, 'b' as v, value * 3 as amount from range({rows}, {end})\n\
         {{% else %}}\n\
         select value as id, 'a' as v, value * 2 as amount from range(0, {rows})\n\
         {{% endif %}}\n",
        every = o.every,
        updated = o.rows.div_ceil(o.every),
        rows = o.rows,
        end = o.rows + new,
    );
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("warehouse.toml"), "[project]\nname = \"merge\"\n[targets.dev]\nschema = \"main\"\n").unwrap();
    std::fs::write(dir.join("models/big.sql"), model).unwrap();
}

const CHECK: &str = "select count(*) as n, count(distinct id) as d, sum(amount) as s, sum(case when v = 'b' then 1 else 0 end) as b from main.big";

fn main() {
    if !invoked_by_cargo_bench() {
        return;
    }
    let o = parse_opts();
    let dp = dp_binary();
    let tmp = tempfile::Builder::new().prefix("dp-bench-merge-").tempdir().unwrap();
    let (dv_dir, merge_dir) = (tmp.path().join("deletion_vectors"), tmp.path().join("merge"));
    for d in [&dv_dir, &merge_dir] {
        write_project(d, &o);
    }
    let off = [("DP_DELETION_VECTORS", "off")];
    let envs = |d: &Path| -> &[(&str, &str)] { if d == merge_dir { &off } else { &[] } };
    println!("dp merge benchmark: {} rows, every {}th updated, {} new", o.rows, o.every, o.new.unwrap_or(o.rows / 100));
    if let Some(p) = o.recent {
        println!("  incremental_predicates: only the newest {p} % of the table's ids match");
    }
    if o.exclude_amount {
        println!("  merge_exclude_columns: amount (a matched row keeps it)");
    }
    println!("  dp binary : {}", dp.display());
    println!("  machine   : {} CPUs, load average {} at start", cpus(), loadavg());
    let (mut dv, mut merge) = (vec![], vec![]);
    for r in 0..o.repeat {
        let order = if r % 2 == 0 { [&dv_dir, &merge_dir] } else { [&merge_dir, &dv_dir] };
        for d in order {
            measure(&dp, &["run", "--full-refresh"], d, envs(d)).expect_ok("full refresh");
        }
        for d in order {
            let m = measure(&dp, &["run"], d, envs(d));
            m.expect_ok("incremental run");
            assert!(m.stderr.contains("[MERGE "), "{}", m.stderr);
            eprintln!("  run {}: {:<16} {:.3} s, {} MB", r + 1, d.file_name().unwrap().to_string_lossy(), m.wall_s, fmt_mb(m.peak_mb));
            if d == &dv_dir { dv.push(m) } else { merge.push(m) }
        }
        let check = |d: &Path| {
            let m = measure(&dp, &["show", "--inline", CHECK, "--format", "csv"], d, &[]);
            m.expect_ok("check");
            m.stdout
        };
        let (a, b) = (check(&dv_dir), check(&merge_dir));
        assert_eq!(a, b, "the two merges left different rows");
        if r == 0 {
            println!("  both tables after the merge: {}", a.lines().collect::<Vec<_>>().join(" | "));
        }
    }
    let (dv, merge) = (median(dv), median(merge));
    println!();
    println!("| merge | wall s (median of {}) | peak MB |", o.repeat);
    println!("|---|---|---|");
    println!("| deletion vectors | {:.3} | {} |", dv.wall_s, fmt_mb(dv.peak_mb));
    println!("| deltalake MERGE (`DP_DELETION_VECTORS=off`) | {:.3} | {} |", merge.wall_s, fmt_mb(merge.peak_mb));
    let ratio = dv.wall_s / merge.wall_s;
    println!();
    println!("Ratio deletion vectors / MERGE: {ratio:.2}x. Target: <= 0.25x: {}", if ratio <= 0.25 { "PASS" } else { "MISS" });
    println!("load average at end: {}", loadavg());
    if o.keep {
        println!("projects kept in {}", tmp.keep().display());
    }
}
