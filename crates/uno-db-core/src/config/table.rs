//! Every field of [`ConnectionConfig`](crate::ConnectionConfig), declared
//! once: type, default, text and file codec, validation rule, the forms
//! that accept it (URL query and libpq parameters, environment variables,
//! configuration file keys; the builder always), whether it is secret, and
//! its doc. `table_macro.rs` derives the rest: the structs, getters,
//! builder setters, the `defaults` module, parsing and URL generation, the
//! environment layers, validation, `serde` and the tables of
//! `docs/configuration.md` (a test keeps those in step).
//!
//! Adding a field is one row here (and its row in the generated tables of
//! the docs). The row order is the order of validation, of URL query
//! parameters, of `Debug` and of the docs.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::codec::{
    Count, DriverName, Flag, HostAddrs, Hosts, OptDuration, OptText, Ports, Retry, Seconds, Secret,
    Settings, Text, Wait,
};
use crate::config::libpq_enum::Named;
use crate::config::limits::{
    MAX_CONNECTIONS, MAX_LIFETIME, MAX_SERVER_TIMEOUT, MAX_STATEMENT_CACHE_SIZE, MAX_WAIT,
    MIN_KEEPALIVES_IDLE, MIN_LIFETIME, MIN_TIMEOUT,
};
use crate::config::table_macro::config_table;
use crate::config::validate::{
    AddressList, AppName, AtMost, Between, FilePath, HostList, Identifier, MinIdle, Multiplex,
    Name, NoNul, NoRule, Overflow, PgBouncerRule, PortList, Range, RetryRule, SchemaList,
    SettingList, TlsSetup,
};
use crate::config::{
    ChannelBinding, Driver, LoadBalanceHosts, PgBouncerMode, SslMode, SslNegotiation,
    TargetSessionAttrs,
};
use crate::retry::RetryPolicy;

config_table! {
    /// The login role (user name).
    role: String {
        default: "postgres", const ROLE: &str;
        codec: Text;
        get: &str;
        set: into;
        rule: Name;
        url: Authority;
        params: ["user"];
        env: ["UNO_DB_ROLE", "PGUSER"];
        serde: ["role", "user"];
        secret: false;
        example: "app";
    }

    /// The password, if any; never shown (`***` in `Debug`, `Display`,
    /// `to_url()` and errors). Expose it only to hand it to the driver.
    password: Option<SecretString> {
        default: None;
        codec: Secret;
        get: Option<&SecretString>;
        set: clearable(SecretString, clear_password);
        rule: NoNul;
        url: Authority;
        params: ["password"];
        env: ["UNO_DB_PASSWORD", "PGPASSWORD"];
        serde: ["password"];
        secret: true;
        example: "Zebra-Quux-9137";
    }

    /// The database name.
    database: String {
        default: "postgres", const DATABASE: &str;
        codec: Text;
        get: &str;
        set: into;
        rule: Name;
        url: Authority;
        params: ["dbname"];
        env: ["UNO_DB_NAME", "PGDATABASE"];
        serde: ["database", "dbname"];
        secret: false;
        example: "orders";
    }

    /// The hosts (names, IP addresses or Unix socket directories starting
    /// with `/`), tried in order; never empty.
    hosts: Vec<String> {
        default: "localhost", const HOST: &str;
        codec: Hosts;
        get: &[String];
        set: custom;
        rule: HostList;
        url: Authority;
        params: ["host"];
        env: ["UNO_DB_HOST", "PGHOST"];
        serde: ["hosts", "host"];
        secret: false;
        example: "db1,db2";
    }

    /// The ports: one for every host, or one per host, in the order of
    /// the hosts (libpq's `port=5432,5433`).
    ports: Vec<u16> {
        default: 5432, const PORT: u16;
        codec: Ports;
        get: &[u16];
        set: custom;
        rule: PortList;
        url: Authority;
        params: ["port"];
        env: ["UNO_DB_PORT", "PGPORT"];
        serde: ["ports", "port"];
        secret: false;
        example: "6543";
    }

    /// Numeric IP addresses to connect to, one per host, instead of
    /// resolving the host names (libpq's `hostaddr`); the names are still
    /// used to check TLS certificates and to look up the password file.
    hostaddrs: Vec<IpAddr> {
        default: Vec::new();
        codec: HostAddrs;
        get: &[IpAddr];
        set: custom;
        rule: AddressList;
        url: Query;
        params: ["hostaddr"];
        env: ["UNO_DB_HOSTADDR", "PGHOSTADDR"];
        serde: ["hostaddrs", "hostaddr"];
        secret: false;
        example: "10.0.0.7";
    }

    /// Which kind of server a connection must reach (see
    /// [`TargetSessionAttrs`]): `Any` (default), `ReadWrite`, `ReadOnly`,
    /// `Primary`, `Standby` or `PreferStandby`.
    target_session_attrs: TargetSessionAttrs {
        default: TargetSessionAttrs::Any, const TARGET_SESSION_ATTRS: TargetSessionAttrs;
        codec: Named<TargetSessionAttrs>;
        get: TargetSessionAttrs;
        set: plain;
        rule: NoRule;
        url: Query;
        params: ["target_session_attrs"];
        env: ["UNO_DB_TARGET_SESSION_ATTRS", "PGTARGETSESSIONATTRS"];
        serde: ["target_session_attrs"];
        secret: false;
        example: "read-write";
    }

    /// What the engines for read-only work ask of a server (see
    /// [`ConnectionConfig::for_reads`](crate::ConnectionConfig::for_reads)): `PreferStandby` (default: a
    /// standby, else the primary), or `Standby` to never read from the
    /// primary; any other value of [`TargetSessionAttrs`] too.
    read_target_session_attrs: TargetSessionAttrs {
        default: TargetSessionAttrs::PreferStandby, const READ_TARGET_SESSION_ATTRS: TargetSessionAttrs;
        codec: Named<TargetSessionAttrs>;
        get: TargetSessionAttrs;
        set: plain;
        rule: NoRule;
        url: Query;
        params: ["read_target_session_attrs"];
        env: ["UNO_DB_READ_TARGET_SESSION_ATTRS"];
        serde: ["read_target_session_attrs"];
        secret: false;
        example: "standby";
    }

    /// The order hosts are tried in: `Disable` (as given) or `Random`
    /// (shuffled for each new connection).
    load_balance_hosts: LoadBalanceHosts {
        default: LoadBalanceHosts::Disable, const LOAD_BALANCE_HOSTS: LoadBalanceHosts;
        codec: Named<LoadBalanceHosts>;
        get: LoadBalanceHosts;
        set: plain;
        rule: NoRule;
        url: Query;
        params: ["load_balance_hosts"];
        env: ["UNO_DB_LOAD_BALANCE_HOSTS", "PGLOADBALANCEHOSTS"];
        serde: ["load_balance_hosts"];
        secret: false;
        example: "random";
    }

    /// With a `target_session_attrs` other than `any`: how long a pooled
    /// connection's server role is trusted before a checkout checks it
    /// again (one round trip), so that a pool stops using a primary that
    /// was demoted (pgjdbc's `hostRecheckSeconds`).
    host_recheck_interval: Duration {
        default: Duration::from_secs(10), const HOST_RECHECK_INTERVAL: Duration;
        codec: Wait;
        get: Duration;
        set: plain;
        rule: Range(MIN_TIMEOUT, MAX_WAIT, "1ms and 1 hour");
        url: Query;
        params: ["host_recheck_interval"];
        env: ["UNO_DB_HOST_RECHECK_INTERVAL"];
        serde: ["host_recheck_interval"];
        secret: false;
        example: "2s";
    }

    /// The driver the configuration asks for: `Any` (whichever backend
    /// opens it), `Postgres` (blocking) or `TokioPostgres` (async).
    driver: Driver {
        default: Driver::Any, const DRIVER: Driver;
        codec: DriverName;
        get: Driver;
        set: plain;
        rule: NoRule;
        url: Scheme;
        params: ["driver"];
        env: ["UNO_DB_DRIVER"];
        serde: ["driver"];
        secret: false;
        example: "postgresql+tokio-postgres";
    }

    /// The `application_name` reported to the server (shown in
    /// `pg_stat_activity` and the server log).
    application_name: Option<String> {
        default: None;
        codec: OptText;
        get: Option<&str>;
        set: clearable(String, clear_application_name);
        rule: AppName;
        url: Query;
        params: ["application_name"];
        env: ["UNO_DB_APPLICATION_NAME", "PGAPPNAME"];
        serde: ["application_name"];
        secret: false;
        example: "billing";
    }

    /// The schema, or comma-separated schemas (`app, public`), to set as
    /// `search_path`: unquoted identifiers, folded to lower case as
    /// `PostgreSQL` does, so `App` means `app`. `schemas()` splits them.
    schema: Option<String> {
        default: None;
        codec: OptText;
        get: Option<&str>;
        set: clearable(String, clear_schema);
        rule: SchemaList;
        url: Query;
        params: ["schema"];
        env: ["UNO_DB_SCHEMA"];
        serde: ["schema"];
        secret: false;
        example: "app, public";
    }

    /// The role to `SET ROLE` to on every new connection (restored on
    /// return if a user changed it): an unquoted identifier, folded to
    /// lower case as `PostgreSQL` does.
    set_role: Option<String> {
        default: None;
        codec: OptText;
        get: Option<&str>;
        set: clearable(String, clear_set_role);
        rule: Identifier;
        url: Query;
        params: ["set_role"];
        env: ["UNO_DB_SET_ROLE"];
        serde: ["set_role"];
        secret: false;
        example: "reader";
    }

    /// Whether to use TLS and what to check, with libpq's meaning (see
    /// [`SslMode`] for what each mode protects against). Every TLS file
    /// is read and checked when the configuration is built.
    ssl_mode: SslMode {
        default: SslMode::Prefer, const SSL_MODE: SslMode;
        codec: Named<SslMode>;
        get: SslMode;
        set: plain;
        rule: TlsSetup;
        url: Query;
        params: ["sslmode"];
        env: ["UNO_DB_SSL_MODE", "PGSSLMODE"];
        serde: ["ssl_mode", "sslmode"];
        secret: false;
        example: "require";
    }

    /// The trusted root certificates (PEM file), or `system` for the
    /// platform's roots (then `sslmode` defaults to `verify-full`, as in
    /// libpq). Unset: `~/.postgresql/root.crt` if it exists.
    ssl_root_cert: Option<String> {
        default: None;
        codec: OptText;
        get: Option<&str>;
        set: clearable(String, clear_ssl_root_cert);
        rule: FilePath;
        url: Query;
        params: ["sslrootcert"];
        env: ["UNO_DB_SSL_ROOT_CERT", "PGSSLROOTCERT"];
        serde: ["ssl_root_cert", "sslrootcert"];
        secret: false;
        example: "tests/data/root.crt";
    }

    /// The client certificate (PEM file, chain allowed) sent when the
    /// server asks for one. Unset: `~/.postgresql/postgresql.crt` if it
    /// exists.
    ssl_cert: Option<String> {
        default: None;
        codec: OptText;
        get: Option<&str>;
        set: clearable(String, clear_ssl_cert);
        rule: FilePath;
        url: Query;
        params: ["sslcert"];
        env: ["UNO_DB_SSL_CERT", "PGSSLCERT"];
        serde: ["ssl_cert", "sslcert"];
        secret: false;
        example: "tests/data/client.pem";
    }

    /// The client certificate's private key (unencrypted PEM: PKCS#8,
    /// PKCS#1 or SEC1). Only its path is kept; the key itself is read
    /// into the TLS layer and never shown. Unset:
    /// `~/.postgresql/postgresql.key` if it exists.
    ssl_key: Option<String> {
        default: None;
        codec: OptText;
        get: Option<&str>;
        set: clearable(String, clear_ssl_key);
        rule: FilePath;
        url: Query;
        params: ["sslkey"];
        env: ["UNO_DB_SSL_KEY", "PGSSLKEY"];
        serde: ["ssl_key", "sslkey"];
        secret: false;
        example: "tests/data/client.pem";
    }

    /// How TLS is started: `Postgres` (an `SSLRequest` first; every
    /// server) or `Direct` (PostgreSQL 17; needs `sslmode=require` or
    /// stricter, and makes `require` the default).
    ssl_negotiation: SslNegotiation {
        default: SslNegotiation::Postgres, const SSL_NEGOTIATION: SslNegotiation;
        codec: Named<SslNegotiation>;
        get: SslNegotiation;
        set: plain;
        rule: NoRule;
        url: Query;
        params: ["sslnegotiation"];
        env: ["UNO_DB_SSL_NEGOTIATION", "PGSSLNEGOTIATION"];
        serde: ["ssl_negotiation", "sslnegotiation"];
        secret: false;
        example: "direct";
    }

    /// Whether SCRAM authentication is bound to the TLS channel
    /// (`SCRAM-SHA-256-PLUS`): `Disable`, `Prefer` or `Require`.
    channel_binding: ChannelBinding {
        default: ChannelBinding::Prefer, const CHANNEL_BINDING: ChannelBinding;
        codec: Named<ChannelBinding>;
        get: ChannelBinding;
        set: plain;
        rule: NoRule;
        url: Query;
        params: ["channel_binding"];
        env: ["UNO_DB_CHANNEL_BINDING", "PGCHANNELBINDING"];
        serde: ["channel_binding"];
        secret: false;
        example: "require";
    }

    /// The password file read when no password is configured (libpq's
    /// format and matching; ignored if group or world can read it).
    /// Unset: `~/.pgpass`.
    passfile: Option<String> {
        default: None;
        codec: OptText;
        get: Option<&str>;
        set: clearable(String, clear_passfile);
        rule: FilePath;
        url: Query;
        params: ["passfile"];
        env: ["UNO_DB_PASSFILE", "PGPASSFILE"];
        serde: ["passfile"];
        secret: false;
        example: "/run/secrets/pgpass";
    }

    /// The longest wait to establish one connection.
    connect_timeout: Duration {
        default: Duration::from_secs(10), const CONNECT_TIMEOUT: Duration;
        codec: Seconds;
        get: Duration;
        set: plain;
        rule: Range(MIN_TIMEOUT, MAX_WAIT, "1ms and 1 hour");
        url: Query;
        params: ["connect_timeout"];
        env: ["UNO_DB_CONNECT_TIMEOUT", "PGCONNECT_TIMEOUT"];
        serde: ["connect_timeout"];
        secret: false;
        example: "3";
    }

    /// Server settings (GUCs) sent at connect time, in order.
    options: Vec<(String, String)> {
        default: Vec::new();
        codec: Settings;
        get: &[(String, String)];
        set: custom;
        rule: SettingList;
        url: Query;
        params: ["options"];
        env: [];
        serde: ["options"];
        secret: false;
        example: "-c work_mem=64MB";
    }

    /// How many connections the pool keeps.
    pool_size: usize {
        default: 10, const POOL_SIZE: usize;
        codec: Count;
        get: usize;
        set: plain;
        rule: Between(1, MAX_CONNECTIONS);
        url: Query;
        params: ["pool_size"];
        env: ["UNO_DB_POOL_SIZE"];
        serde: ["pool_size"];
        secret: false;
        example: "20";
    }

    /// How many extra connections may be opened under a burst, closed
    /// again when idle; `max_connections()` is `pool_size + max_overflow`.
    max_overflow: usize {
        default: 10, const MAX_OVERFLOW: usize;
        codec: Count;
        get: usize;
        set: plain;
        rule: Overflow;
        url: Query;
        params: ["max_overflow"];
        env: ["UNO_DB_MAX_OVERFLOW"];
        serde: ["max_overflow"];
        secret: false;
        example: "5";
    }

    /// The longest wait for a pooled connection.
    pool_timeout: Duration {
        default: Duration::from_secs(30), const POOL_TIMEOUT: Duration;
        codec: Wait;
        get: Duration;
        set: plain;
        rule: Range(MIN_TIMEOUT, MAX_WAIT, "1ms and 1 hour");
        url: Query;
        params: ["pool_timeout"];
        env: ["UNO_DB_POOL_TIMEOUT"];
        serde: ["pool_timeout"];
        secret: false;
        example: "5s";
    }

    /// The maximum lifetime of a connection; `None` (`off`) keeps
    /// connections forever.
    pool_recycle: Option<Duration> {
        default: Some(Duration::from_secs(30 * 60)), const POOL_RECYCLE: Option<Duration>;
        codec: OptDuration;
        get: Option<Duration>;
        set: into;
        rule: Range(MIN_LIFETIME, MAX_LIFETIME, "1s and 1 week");
        url: Query;
        params: ["pool_recycle"];
        env: ["UNO_DB_POOL_RECYCLE"];
        serde: ["pool_recycle"];
        secret: false;
        example: "1h";
    }

    /// A connection that has waited this long in the pool since its return
    /// is closed (any connection: the pool keeps no minimum); `None`
    /// (`off`): never closed for being idle.
    idle_timeout: Option<Duration> {
        default: Some(Duration::from_secs(10 * 60)), const IDLE_TIMEOUT: Option<Duration>;
        codec: OptDuration;
        get: Option<Duration>;
        set: into;
        rule: Range(MIN_LIFETIME, MAX_LIFETIME, "1s and 1 week");
        url: Query;
        params: ["idle_timeout"];
        env: ["UNO_DB_IDLE_TIMEOUT"];
        serde: ["idle_timeout"];
        secret: false;
        example: "2min";
    }

    /// How many idle connections the pool keeps open (at most
    /// `pool_size`): opened by `warm_up()` and refilled in the background
    /// after connections close, with the retry policy's backoff. 0 (the
    /// default) opens connections only on checkout.
    min_idle: usize {
        default: 0, const MIN_IDLE: usize;
        codec: Count;
        get: usize;
        set: plain;
        rule: MinIdle;
        url: Query;
        params: ["min_idle"];
        env: ["UNO_DB_MIN_IDLE"];
        serde: ["min_idle"];
        secret: false;
        example: "2";
    }

    /// A connection checked out for longer than this is reported once
    /// (a `WARN` event naming where it was checked out and for how long),
    /// and again when it is returned; `None` (`off`, the default): never.
    leak_detection_threshold: Option<Duration> {
        default: None, const LEAK_DETECTION_THRESHOLD: Option<Duration>;
        codec: OptDuration;
        get: Option<Duration>;
        set: into;
        rule: Range(MIN_TIMEOUT, MAX_LIFETIME, "1ms and 1 week");
        url: Query;
        params: ["leak_detection_threshold"];
        env: ["UNO_DB_LEAK_DETECTION_THRESHOLD"];
        serde: ["leak_detection_threshold"];
        secret: false;
        example: "30s";
    }

    /// Whether a connection is pinged before being handed out.
    pre_ping: bool {
        default: false, const PRE_PING: bool;
        codec: Flag;
        get: bool;
        set: plain;
        rule: NoRule;
        url: Query;
        params: ["pre_ping"];
        env: ["UNO_DB_PRE_PING"];
        serde: ["pre_ping"];
        secret: false;
        example: "true";
    }

    /// Whether a returned connection is reset with `DISCARD ALL` (then the
    /// configured search path and role are set again): every setting,
    /// temporary table, prepared statement, advisory lock and `LISTEN` of
    /// the session goes, those the callbacks made included. Costs a round
    /// trip per return and a new prepare of every statement after it.
    discard_on_return: bool {
        default: false, const DISCARD_ON_RETURN: bool;
        codec: Flag;
        get: bool;
        set: plain;
        rule: NoRule;
        url: Query;
        params: ["discard_on_return"];
        env: ["UNO_DB_DISCARD_ON_RETURN"];
        serde: ["discard_on_return"];
        secret: false;
        example: "true";
    }

    /// Whether statement spans record the SQL text as `db.query.text`
    /// (see docs/observability.md). Off by default: SQL may hold literals a
    /// trace store should not keep. Parameter values are never recorded.
    trace_query_text: bool {
        default: false, const TRACE_QUERY_TEXT: bool;
        codec: Flag;
        get: bool;
        set: plain;
        rule: NoRule;
        url: Query;
        params: ["trace_query_text"];
        env: ["UNO_DB_TRACE_QUERY_TEXT"];
        serde: ["trace_query_text"];
        secret: false;
        example: "true";
    }

    /// The server-side `statement_timeout`; `None` (`off`) leaves the
    /// server's setting.
    statement_timeout: Option<Duration> {
        default: None, const STATEMENT_TIMEOUT: Option<Duration>;
        codec: OptDuration;
        get: Option<Duration>;
        set: into;
        rule: Range(MIN_TIMEOUT, MAX_SERVER_TIMEOUT, "1ms and 1 day");
        url: Query;
        params: ["statement_timeout"];
        env: ["UNO_DB_STATEMENT_TIMEOUT"];
        serde: ["statement_timeout"];
        secret: false;
        example: "30s";
    }

    /// Client-side limit on one statement: when it passes, the statement
    /// fails with a timeout error, a cancel request is sent and the
    /// connection is discarded; unlike `statement_timeout` it also fires
    /// when the server or network goes silent. `None` (`0` or `off`) turns
    /// it off.
    query_timeout: Option<Duration> {
        default: Some(Duration::from_secs(300)), const QUERY_TIMEOUT: Option<Duration>;
        codec: OptDuration<true>; // `0` is off, as for the server's timeouts
        get: Option<Duration>;
        set: into;
        rule: Range(MIN_TIMEOUT, MAX_SERVER_TIMEOUT, "1ms and 1 day");
        url: Query;
        params: ["query_timeout"];
        env: ["UNO_DB_QUERY_TIMEOUT"];
        serde: ["query_timeout"];
        secret: false;
        example: "45s";
    }

    /// The TCP keepalive idle time; `None` (`off`) turns keepalives off.
    keepalives_idle: Option<Duration> {
        default: Some(Duration::from_secs(60)), const KEEPALIVES_IDLE: Option<Duration>;
        codec: OptDuration;
        get: Option<Duration>;
        set: into;
        rule: Range(MIN_KEEPALIVES_IDLE, MAX_SERVER_TIMEOUT, "1s and 1 day");
        url: Query;
        params: ["keepalives_idle"];
        env: [];
        serde: ["keepalives_idle"];
        secret: false;
        example: "30s";
    }

    /// The TCP user timeout (Linux): how long sent data may stay
    /// unacknowledged; `None` (`off`) leaves the system's.
    tcp_user_timeout: Option<Duration> {
        default: Some(Duration::from_secs(30)), const TCP_USER_TIMEOUT: Option<Duration>;
        codec: OptDuration;
        get: Option<Duration>;
        set: into;
        rule: Range(MIN_TIMEOUT, MAX_SERVER_TIMEOUT, "1ms and 1 day");
        url: Query;
        params: ["tcp_user_timeout"];
        env: [];
        serde: ["tcp_user_timeout"];
        secret: false;
        example: "10s";
    }

    /// The per-connection prepared statement cache capacity; 0 disables
    /// it (for `PgBouncer` in transaction mode).
    statement_cache_size: usize {
        default: 256, const STATEMENT_CACHE_SIZE: usize;
        codec: Count;
        get: usize;
        set: plain;
        rule: AtMost(MAX_STATEMENT_CACHE_SIZE);
        url: Query;
        params: ["statement_cache_size"];
        env: ["UNO_DB_STATEMENT_CACHE_SIZE"];
        serde: ["statement_cache_size"];
        secret: false;
        example: "0";
    }

    /// How many shared connections the async backend's multiplexed client
    /// pipelines autocommit statements over (`AsyncEngine::multiplexed`,
    /// see docs/multiplexing.md); they are opened on first use, besides the
    /// pool, and not counted in `pool_size`. 0 (the default) turns the
    /// multiplexed mode off.
    multiplex_connections: usize {
        default: 0, const MULTIPLEX_CONNECTIONS: usize;
        codec: Count;
        get: usize;
        set: plain;
        rule: Multiplex;
        url: Query;
        params: ["multiplex_connections"];
        env: ["UNO_DB_MULTIPLEX_CONNECTIONS"];
        serde: ["multiplex_connections"];
        secret: false;
        example: "4";
    }

    /// The pooling mode of a PgBouncer between the pool and the server
    /// (see [`PgBouncerMode`]): `None` (default), `Session` or
    /// `Transaction` (no statement cache, no session settings).
    pgbouncer_mode: PgBouncerMode {
        default: PgBouncerMode::None, const PGBOUNCER_MODE: PgBouncerMode;
        codec: Named<PgBouncerMode>;
        get: PgBouncerMode;
        set: plain;
        rule: PgBouncerRule;
        url: Query;
        params: ["pgbouncer_mode"];
        env: ["UNO_DB_PGBOUNCER_MODE"];
        serde: ["pgbouncer_mode"];
        secret: false;
        example: "transaction";
    }

    /// How connecting retries transient failures.
    retry: RetryPolicy {
        default: RetryPolicy::default();
        codec: Retry;
        get: RetryPolicy;
        set: plain;
        rule: RetryRule;
        url: Query;
        params: [
            "retry_max_attempts",
            "retry_initial_delay",
            "retry_multiplier",
            "retry_max_delay",
            "retry_deadline",
        ];
        env: [];
        serde: ["retry"];
        secret: false;
        example: "7";
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::ConnectionConfig;

    use super::*;

    #[test]
    fn query_timeout_is_on_by_default_and_zero_or_off_disables_it_in_every_form() {
        let config = ConnectionConfig::default();
        assert_eq!(config.query_timeout(), Some(Duration::from_secs(300)));
        assert_eq!(defaults::QUERY_TIMEOUT, config.query_timeout());
        for off in ["0", "0s", "off", "none"] {
            let url: ConnectionConfig = format!("postgresql://h?query_timeout={off}")
                .parse()
                .unwrap();
            let key_value: ConnectionConfig = format!("query_timeout={off}").parse().unwrap();
            let env = [("UNO_DB_QUERY_TIMEOUT", off)];
            let env = ConnectionConfig::from_env_with(&env).unwrap();
            for config in [url, key_value, env] {
                assert_eq!(config.query_timeout(), None, "{off}");
            }
        }
        let built = ConnectionConfig::builder()
            .query_timeout(None)
            .build()
            .unwrap();
        assert_eq!(built.query_timeout(), None);
        assert!(built.to_url().ends_with("?query_timeout=off"));
        let seconds: ConnectionConfig = "query_timeout=30".parse().unwrap();
        assert_eq!(seconds.query_timeout(), Some(Duration::from_secs(30)));
        let error = ConnectionConfig::builder()
            .query_timeout(Duration::from_secs(86_401))
            .build()
            .unwrap_err();
        assert_eq!(error.config_violations()[0].field(), "query_timeout");
        #[cfg(feature = "serde")]
        for off in ["0", r#""0s""#, r#""off""#, "null"] {
            let json = format!(r#"{{"query_timeout": {off}}}"#);
            let config: ConnectionConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(config.query_timeout(), None, "{json}");
        }
    }
}
