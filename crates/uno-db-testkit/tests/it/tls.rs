//! `TestClusterBuilder::tls`: certificates, TLS settings and `pg_hba.conf` rules, checked with
//! libpq (`psql`) since the workspace has no TLS connector of its own yet.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use postgres::{Client, NoTls};
use uno_db_testkit::{PG_BIN_ENV, TestCluster, TestkitError, TlsOptions, run_bounded};

use crate::deadline::{CLUSTER_TEST_LIMIT, within};

/// How long one `psql` run may take (its connection attempt is limited to 10 s).
const PSQL_TIMEOUT: Duration = Duration::from_secs(20);

/// What each `psql` run asks: whether the session uses TLS, and as whom.
const QUERY: &str = "SELECT ssl, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// `psql`, preferably from the same installation as the server.
fn psql_program() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::env::var_os(PG_BIN_ENV)
        .map(|dir| PathBuf::from(dir).join("psql"))
        .into_iter()
        .collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse().ok()?;
                Some((version, entry.path().join("bin").join("psql")))
            })
            .collect();
        versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
        candidates.extend(versions.into_iter().map(|(_, path)| path));
    }
    candidates
        .into_iter()
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("psql"))
}

/// A conninfo value in single quotes.
fn quoted(path: &Path) -> String {
    let text = path.to_str().unwrap();
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A conninfo string for the `postgres` database of `cluster` at `host` as `user`.
fn conninfo(cluster: &TestCluster, host: &str, user: &str, extra: &str) -> String {
    format!(
        "host={host} port={} user={user} dbname=postgres connect_timeout=10 {extra}",
        cluster.port()
    )
}

/// Runs [`QUERY`] with `psql` on `conninfo`: its answer (`t|postgres`), or what `psql`
/// printed when it failed. libpq's environment is cleared and `HOME` is an empty directory,
/// so no `~/.postgresql/` file or `PG*` variable plays a part.
fn psql(conninfo: &str) -> Result<String, String> {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(psql_program());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|name| name.starts_with("PG")) {
            command.env_remove(name);
        }
    }
    command
        .env("HOME", home.path())
        .env("LC_ALL", "C")
        .args(["-X", "-A", "-t", "-w", "-c", QUERY, "-d", conninfo]);
    match run_bounded(command, "psql", PSQL_TIMEOUT) {
        Ok(output) => Ok(output.trim().to_owned()),
        Err(TestkitError::Command { output, .. }) => Err(output),
        Err(error) => panic!("psql did not run: {error:?}"),
    }
}

fn assert_fails(conninfo: &str, expected: &str) {
    match psql(conninfo) {
        Ok(answer) => panic!("`{conninfo}` connected ({answer}) but should have failed"),
        Err(output) => assert!(
            output.contains(expected),
            "`{conninfo}` failed, but without {expected:?}:\n{output}"
        ),
    }
}

#[test]
fn verify_full_accepts_the_server_by_address_and_by_localhost() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::shared_tls().unwrap();
        let tls = cluster.tls().unwrap();
        let verify_full = format!("sslmode=verify-full sslrootcert={}", quoted(tls.ca_cert()));
        for host in ["127.0.0.1", "localhost"] {
            assert_eq!(
                psql(&conninfo(cluster, host, "postgres", &verify_full)),
                Ok("t|postgres".to_owned()),
                "{host}"
            );
        }

        // Ordinary roles may still connect in plaintext (`host` rules match both).
        assert_eq!(
            psql(&conninfo(
                cluster,
                "127.0.0.1",
                "postgres",
                "sslmode=disable"
            )),
            Ok("f|postgres".to_owned())
        );
        let mut client = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        let ssl: String = client.query_one("SHOW ssl", &[]).unwrap().get(0);
        assert_eq!(ssl, "on");
        let encryption: String = client
            .query_one("SHOW password_encryption", &[])
            .unwrap()
            .get(0);
        assert_eq!(encryption, "scram-sha-256");
    });
}

#[test]
fn a_trust_root_that_did_not_sign_the_server_certificate_is_refused() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::shared_tls().unwrap();
        let tls = cluster.tls().unwrap();
        for mode in ["verify-ca", "verify-full"] {
            assert_fails(
                &conninfo(
                    cluster,
                    "127.0.0.1",
                    "postgres",
                    &format!("sslmode={mode} sslrootcert={}", quoted(tls.other_ca_cert())),
                ),
                "certificate verify failed",
            );
        }
    });
}

#[test]
fn the_cert_role_connects_only_over_tls_with_its_client_certificate() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::shared_tls().unwrap();
        let tls = cluster.tls().unwrap();
        let role = tls.cert_role();
        assert_eq!(role, "cert_user");
        let verify_full = format!("sslmode=verify-full sslrootcert={}", quoted(tls.ca_cert()));

        assert_fails(
            &conninfo(cluster, "127.0.0.1", role, "sslmode=disable"),
            "pg_hba.conf rejects connection",
        );
        assert_fails(
            &conninfo(cluster, "127.0.0.1", role, &verify_full),
            "connection requires a valid client certificate",
        );
        let with_cert = format!(
            "{verify_full} sslcert={} sslkey={}",
            quoted(tls.client_cert()),
            quoted(tls.client_key())
        );
        assert_eq!(
            psql(&conninfo(cluster, "127.0.0.1", role, &with_cert)),
            Ok(format!("t|{role}"))
        );
    });
}

#[test]
fn the_ssl_only_role_is_refused_in_plaintext_and_let_in_over_tls() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::shared_tls().unwrap();
        let tls = cluster.tls().unwrap();
        let role = tls.ssl_only_role();
        let password = format!("password={}", tls.ssl_only_password());

        assert_fails(
            &conninfo(
                cluster,
                "127.0.0.1",
                role,
                &format!("{password} sslmode=disable"),
            ),
            "pg_hba.conf rejects connection",
        );
        // `allow` tries plaintext first and, refused, tries again over TLS.
        for mode in ["require", "allow"] {
            assert_eq!(
                psql(&conninfo(
                    cluster,
                    "127.0.0.1",
                    role,
                    &format!("{password} sslmode={mode}"),
                )),
                Ok(format!("t|{role}")),
                "{mode}"
            );
        }
        // With password authentication on, the password is required.
        assert_fails(
            &conninfo(cluster, "127.0.0.1", role, "password=wrong sslmode=require"),
            "password authentication failed",
        );
    });
}

#[test]
fn a_password_role_can_require_channel_binding_over_tls() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::shared_tls().unwrap();
        let tls = cluster.tls().unwrap();
        let name = format!("binding_{}", std::process::id());
        let role = cluster.create_role(&name, "s3cret").unwrap();
        let binding = format!(
            "password={} channel_binding=require sslmode=verify-full sslrootcert={}",
            role.password(),
            quoted(tls.ca_cert())
        );
        assert_eq!(
            psql(&conninfo(cluster, "127.0.0.1", &name, &binding)),
            Ok(format!("t|{name}"))
        );
        // Without TLS there is nothing to bind to.
        assert_fails(
            &conninfo(
                cluster,
                "127.0.0.1",
                &name,
                "password=s3cret channel_binding=require sslmode=disable",
            ),
            "channel binding",
        );
    });
}

#[test]
fn a_certificate_for_another_host_passes_verify_ca_only_and_its_files_go_with_the_cluster() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::builder()
            .tls(TlsOptions::default().server_names(["db.other.example"]))
            .start()
            .unwrap();
        let tls = cluster.tls().unwrap().clone();
        let ca = quoted(tls.ca_cert());
        assert_fails(
            &conninfo(
                &cluster,
                "127.0.0.1",
                "postgres",
                &format!("sslmode=verify-full sslrootcert={ca}"),
            ),
            "does not match host name",
        );
        assert_eq!(
            psql(&conninfo(
                &cluster,
                "127.0.0.1",
                "postgres",
                &format!("sslmode=verify-ca sslrootcert={ca}"),
            )),
            Ok("t|postgres".to_owned())
        );

        // The server's key is the server's alone; the client's key is ours alone.
        let server_key = cluster.data_dir().join("server.key");
        let server_key_meta = std::fs::metadata(&server_key).unwrap();
        assert_eq!(server_key_meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            server_key_meta.uid(),
            std::fs::metadata(cluster.data_dir()).unwrap().uid()
        );
        let client_key_meta = std::fs::metadata(tls.client_key()).unwrap();
        assert_eq!(client_key_meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            client_key_meta.uid(),
            std::fs::metadata("/proc/self").unwrap().uid()
        );

        drop(cluster);
        for path in [
            tls.ca_cert(),
            tls.other_ca_cert(),
            tls.client_cert(),
            tls.client_key(),
            server_key.as_path(),
        ] {
            assert!(!path.exists(), "{} outlived its cluster", path.display());
        }
    });
}

#[test]
fn a_cluster_without_tls_has_no_tls_files() {
    within(CLUSTER_TEST_LIMIT, || {
        assert!(TestCluster::shared().unwrap().tls().is_none());
    });
}
