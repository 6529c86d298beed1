//! A PostgreSQL 15 server for the benches that need one (`publish`,
//! `ingest`): the one scripts/test.sh started (`DP_TEST_PG_*`), else a
//! throwaway cluster on loopback, run as the postgres user under root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Server {
    pub host: String,
    pub port: String,
    pub user: String,
    /// The cluster this bench started (stopped on drop) and whether it
    /// runs as the postgres user.
    owned: Option<(PathBuf, bool)>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((dir, root)) = &self.owned {
            let _ = pg_command(*root, "/usr/lib/postgresql/15/bin/pg_ctl").arg("-D").arg(dir.join("data")).args(["-m", "fast", "stop"]).output();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// `program`, run as the postgres user when we are root.
fn pg_command(root: bool, program: &str) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

/// The test server (`DP_TEST_PG_*`), else a throwaway PostgreSQL 15 cluster
/// this bench starts (and stops on drop); `tag` names its folder.
pub fn server(tag: &str) -> Server {
    if let Ok(port) = std::env::var("DP_TEST_PG_PORT") {
        return Server {
            host: std::env::var("DP_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into()),
            port,
            user: std::env::var("DP_TEST_PG_USER").unwrap_or_else(|_| "postgres".into()),
            owned: None,
        };
    }
    let bin = "/usr/lib/postgresql/15/bin";
    assert!(Path::new(bin).join("initdb").exists(), "PostgreSQL 15 is not installed: apt-get install postgresql-15 (or run scripts/test.sh once)");
    let root = is_root();
    let dir = PathBuf::from(format!("/tmp/dp-bench-{tag}-pg.{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if root {
        Command::new("chown").args(["postgres:"]).arg(&dir).status().unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let st = pg_command(root, &format!("{bin}/initdb"))
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        .output()
        .unwrap();
    assert!(st.status.success(), "initdb failed: {}", String::from_utf8_lossy(&st.stderr));
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=4GB",
        dir.display()
    );
    let st = pg_command(root, &format!("{bin}/pg_ctl"))
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-w", "-o", &opts, "start"])
        .output()
        .unwrap();
    assert!(st.status.success(), "pg_ctl start failed: {}", String::from_utf8_lossy(&st.stderr));
    Server { host: "127.0.0.1".into(), port, user: "postgres".into(), owned: Some((dir, root)) }
}

impl Server {
    pub fn psql(&self, db: &str) -> Command {
        let mut c = Command::new("psql");
        c.args(["-h", &self.host, "-p", &self.port, "-U", &self.user, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt"]);
        c
    }

    pub fn sql(&self, db: &str, sql: &str) -> String {
        let o = self.psql(db).args(["-c", sql]).output().expect("psql");
        assert!(o.status.success(), "{sql}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    pub fn env<'a>(&'a self, db: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![("PGHOST", self.host.as_str()), ("PGPORT", self.port.as_str()), ("PGUSER", self.user.as_str()), ("PGDATABASE", db)]
    }
}
