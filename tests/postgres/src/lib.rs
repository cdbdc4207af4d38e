//! The PostgreSQL database the tests use, and a schema of its own for each test: shared by
//! the PostgreSQL store's tests and the cluster tests that start `proofpix serve` processes.
//!
//! Where the database comes from, in order:
//! 1. `PROOFPIX_TEST_DATABASE_URL`, when set (an unreachable one is an error, not skipped);
//! 2. a server on `127.0.0.1:5432` that lets user `postgres` in without a password (the
//!    `test` database, else `postgres`);
//! 3. a private server: when PostgreSQL's server programs are installed
//!    (`/usr/lib/postgresql/*/bin/initdb`), a cluster is created in a temporary directory
//!    and started on a free loopback port (as user `postgres` when the tests run as root,
//!    which initdb refuses), and stopped and removed when the test process exits;
//! 4. otherwise every test fails with a message saying what to install.
//!
//! `PROOFPIX_TEST_PRIVATE_POSTGRES=1` skips step 2 (to test step 3 on a machine that has a
//! server).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proofpix_store_pg::masked_url;

const DEFAULT_URLS: [&str; 2] = [
    "postgres://postgres@127.0.0.1:5432/test",
    "postgres://postgres@127.0.0.1:5432/postgres",
];

static DATABASE: OnceLock<Result<String, String>> = OnceLock::new();

/// The database URL the tests use; panics with what to do when there is none.
pub fn database_url() -> &'static str {
    match DATABASE.get_or_init(find_database) {
        Ok(url) => url,
        Err(why) => panic!("{why}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
}

/// Runs `sql` (simple protocol, several statements allowed) on a connection of its own.
pub fn admin(url: &str, sql: &str) -> Result<(), String> {
    runtime().block_on(async {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        config.connect_timeout(Duration::from_secs(3));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("{e}"))?;
        let driver = tokio::spawn(connection);
        let r = client.batch_execute(sql).await.map_err(|e| format!("{e}"));
        drop(client);
        let _ = driver.await;
        r
    })
}

/// The first row's first column of `sql`, as text.
pub fn admin_value(url: &str, sql: &str) -> Result<Option<String>, String> {
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("{e}"))?;
        let driver = tokio::spawn(connection);
        let r = client.simple_query(sql).await.map_err(|e| format!("{e}"));
        drop(client);
        let _ = driver.await;
        Ok(r?
            .into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
                _ => None,
            })
            .flatten())
    })
}

fn find_database() -> Result<String, String> {
    if let Ok(url) = std::env::var("PROOFPIX_TEST_DATABASE_URL")
        && !url.trim().is_empty()
    {
        return admin(&url, "SELECT 1").map(|()| url.clone()).map_err(|e| {
            format!(
                "PROOFPIX_TEST_DATABASE_URL names {}, which cannot be reached ({e}); start it \
                 or unset the variable",
                masked_url(&url)
            )
        });
    }
    // PROOFPIX_TEST_PRIVATE_POSTGRES=1 skips the shared server, to test the private one.
    if std::env::var("PROOFPIX_TEST_PRIVATE_POSTGRES").as_deref() != Ok("1") {
        for url in DEFAULT_URLS {
            if admin(url, "SELECT 1").is_ok() {
                return Ok(url.to_string());
            }
        }
    }
    start_private_server()
}

/// The newest installed `initdb` under `/usr/lib/postgresql/<version>/bin`.
fn find_initdb() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let initdb = e.path().join("bin/initdb");
            initdb.is_file().then_some((version, initdb))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args` as the server's user: `postgres` when we are root.
fn as_server_user(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start_private_server() -> Result<String, String> {
    // Left running for the rest of the process (its watchdog stops it afterwards).
    PrivateServer::start().map(|s| s.url)
}

/// A PostgreSQL server of one test's own, in a temporary directory on a free loopback port:
/// for tests that stop and start the server under running daemons. Stopped and removed when
/// the test process exits.
#[derive(Debug, Clone)]
pub struct PrivateServer {
    /// Its URL (user `postgres`, database `postgres`, trust authentication).
    pub url: String,
    pg_ctl: PathBuf,
    data: PathBuf,
    dir: PathBuf,
    port: u16,
    root: bool,
    /// Extra server settings (`-c name=value`), such as TLS's.
    settings: Vec<String>,
}

impl PrivateServer {
    /// Creates and starts one, when PostgreSQL's server programs are installed.
    ///
    /// # Errors
    /// What is missing or what failed, in words.
    pub fn start() -> Result<PrivateServer, String> {
        Self::start_configured(false)
    }

    /// As [`PrivateServer::start`], accepting TCP connections over TLS only (`hostssl` in
    /// `pg_hba.conf`), with a certificate for `127.0.0.1` and `localhost` issued by a test CA
    /// made here. Returns the server and the CA certificate's path (for `sslrootcert`).
    ///
    /// # Errors
    /// As [`PrivateServer::start`], or `openssl` failed.
    pub fn start_tls_only() -> Result<(PrivateServer, PathBuf), String> {
        let server = Self::start_configured(true)?;
        let ca = server.dir.join("ca.crt");
        Ok((server, ca))
    }

    fn start_configured(tls_only: bool) -> Result<PrivateServer, String> {
        let Some(initdb) = find_initdb() else {
            return Err(
                "no PostgreSQL for the tests: set PROOFPIX_TEST_DATABASE_URL, run a server \
                 on 127.0.0.1:5432 that lets user postgres in, or install PostgreSQL's \
                 server programs (Debian/Ubuntu: `apt-get install postgresql`; ./test \
                 installs it) so the tests can start a private one"
                    .to_string(),
            );
        };
        let bin = initdb.parent().unwrap_or(Path::new("/")).to_path_buf();
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("proofpix-pg-")
            .tempdir()
            .map_err(|e| format!("cannot make a directory for a private PostgreSQL: {e}"))?
            .keep();
        let data = dir.join("data");
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!(
                    "the tests run as root, and a private PostgreSQL must run as user postgres, \
                     but {} cannot be given to it (is there a postgres user? installing the \
                     Debian package postgresql creates it)",
                    dir.display()
                ));
            }
        }
        let out = as_server_user(root, &initdb)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", initdb.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                initdb.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut settings = Vec::new();
        if tls_only {
            make_certificates(&dir)?;
            for f in ["server.crt", "server.key"] {
                let target = data.join(f);
                std::fs::copy(dir.join(f), &target).map_err(|e| format!("{f}: {e}"))?;
                if root {
                    let _ = Command::new("chown").arg("postgres:").arg(&target).status();
                }
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| format!("{f}: {e}"))?;
            }
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            )
            .map_err(|e| format!("pg_hba.conf: {e}"))?;
            settings.push("-c ssl=on".to_string());
        }
        let server = PrivateServer {
            url: String::new(),
            pg_ctl: bin.join("pg_ctl"),
            data,
            dir,
            port: free_port()?,
            root,
            settings,
        };
        let server = PrivateServer {
            url: format!("postgres://postgres@127.0.0.1:{}/postgres", server.port),
            ..server
        };
        server.start_again()?;
        // Stops the server and removes its directory once this test process has exited.
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            runas = if root { "runuser -u postgres -- " } else { "" },
            pg_ctl = server.pg_ctl.display(),
            data = server.data.display(),
            dir = server.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the private server's watchdog: {e}"))?;
        if !tls_only {
            admin(&server.url, "SELECT 1")
                .map_err(|e| format!("the private PostgreSQL does not answer: {e}"))?;
        }
        Ok(server)
    }

    /// Starts the server again (after [`PrivateServer::crash`]), on the same port and data,
    /// and waits until it accepts connections.
    ///
    /// # Errors
    /// `pg_ctl start` failed; its log is in the message.
    pub fn start_again(&self) -> Result<(), String> {
        let out = as_server_user(self.root, &self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 {}",
                self.port,
                self.dir.display(),
                self.settings.join(" ")
            ))
            .args(["-w", "start"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.pg_ctl.display()))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            return Err(format!(
                "{} start failed: {}{log}",
                self.pg_ctl.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`: every connection cut,
    /// no shutdown checkpoint; the next start recovers from the write-ahead log).
    ///
    /// # Errors
    /// `pg_ctl stop` failed.
    pub fn crash(&self) -> Result<(), String> {
        let out = as_server_user(self.root, &self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.pg_ctl.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} stop failed: {}",
                self.pg_ctl.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }
}

/// A test CA (`ca.crt`) and a server certificate it issued for 127.0.0.1 and localhost
/// (`server.crt`, `server.key`), made with `openssl` in `dir`.
fn make_certificates(dir: &Path) -> Result<(), String> {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .map_err(|e| e.to_string())?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=proofpix-test-ca",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("cannot run openssl (install it): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "openssl {} failed: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A schema name no other test (of this run or another) uses.
pub fn fresh_schema() -> String {
    let mut r = [0u8; 4];
    let _ = getrandom::getrandom(&mut r);
    format!(
        "pp_test_{}_{}_{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        u32::from_le_bytes(r)
    )
}

/// Drops its schema (with everything in it) when dropped.
#[derive(Debug)]
pub struct SchemaGuard {
    /// The database.
    pub url: String,
    /// The schema.
    pub schema: String,
}

impl SchemaGuard {
    /// A fresh schema in the tests' database ([`database_url`], [`fresh_schema`]), dropped
    /// with the guard.
    pub fn fresh() -> Self {
        Self::fresh_in(database_url())
    }

    /// A fresh schema in the database at `url` (a [`PrivateServer`]'s), dropped with the
    /// guard.
    pub fn fresh_in(url: &str) -> Self {
        SchemaGuard {
            url: url.to_string(),
            schema: fresh_schema(),
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        if let Err(e) = admin(
            &self.url,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
        ) {
            eprintln!("could not drop test schema {}: {e}", self.schema);
        }
    }
}
