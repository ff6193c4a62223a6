//! What a user's SQL may do to the session a pooled connection carries:
//! open a transaction, change the role or the search path.
//!
//! Neither driver reports the server's transaction status, so the kernel
//! reads the SQL. It reads it the way the server splits it: statements end
//! at `;` outside quotes, comments and dollar-quoted bodies, and only a
//! statement's leading keywords decide what it does. So `SET x = 1; BEGIN`
//! opens a transaction, while `-- START TRANSACTION` and
//! `DO $$ BEGIN ... END $$` do not. Every doubt is resolved towards "yes":
//! a false yes costs one cleaning statement on return, a false no would hand
//! the next user a dirty session.

/// What a piece of SQL may have done to the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqlEffects {
    /// A transaction block may be open afterwards (`BEGIN`, `START
    /// TRANSACTION`, `COMMIT AND CHAIN`...).
    pub opens_transaction: bool,
    /// The current role or session authorization may have changed.
    pub changes_role: bool,
    /// The search path may have changed.
    pub changes_search_path: bool,
    /// Prepared statements may be gone (`DISCARD ALL`, `DEALLOCATE`).
    pub drops_statements: bool,
    /// The SQL may leave state in the session or rely on state left there
    /// earlier, beyond what the fields above say: a setting (any `SET` or
    /// `RESET`), transaction control, `LISTEN`/`UNLISTEN`, a named
    /// prepared statement or cursor (`PREPARE`, `EXECUTE`, `DECLARE`,
    /// `FETCH`, `MOVE`, `CLOSE`), `DISCARD`, `LOAD`, a `DO` block (its
    /// body may change anything), a temporary object
    /// (`CREATE TEMP ...`, `SELECT ... INTO TEMP`), a session advisory
    /// lock, `currval`/`lastval`, `set_config` or `dblink_connect`. What a
    /// statement on a shared (multiplexed) connection must not do; the
    /// pooled path does not look at it.
    pub touches_session: bool,
}

impl SqlEffects {
    /// The effects of one extended-protocol statement, which the server
    /// runs alone.
    #[must_use]
    pub fn of_statement(sql: &str) -> Self {
        let mut effects = Self::default();
        let mut scanner = Scanner::new(sql);
        effects.add_statement(&mut scanner, false);
        effects.add_anywhere(sql);
        effects
    }

    /// The effects of a simple-protocol batch: any of its `;`-separated
    /// statements counts.
    #[must_use]
    pub fn of_batch(sql: &str) -> Self {
        let mut effects = Self::default();
        let mut scanner = Scanner::new(sql);
        while !scanner.at_end() {
            effects.add_statement(&mut scanner, true);
        }
        effects.add_anywhere(sql);
        effects
    }

    /// Reads the leading keywords of the next statement and, in a batch
    /// (`to_end`), skips to its end. Statements that begin with no keyword
    /// of interest (the common `SELECT`, `INSERT`...) are not read further.
    fn add_statement(&mut self, scanner: &mut Scanner<'_>, to_end: bool) {
        let mut words: [&str; 4] = [""; 4];
        let mut count = 0;
        // Whether `AND CHAIN` (not `AND NO CHAIN`) appears at the top level.
        let mut previous = "";
        let mut before_previous = "";
        let mut chained = false;
        while let Some(token) = scanner.next_token() {
            match token {
                Token::End => break,
                Token::Word(word) => {
                    if count == 0 && !is_leading_keyword(word) {
                        if to_end {
                            scanner.skip_statement();
                        }
                        return;
                    }
                    if count < words.len() {
                        words[count] = word;
                        count += 1;
                    }
                    if word.eq_ignore_ascii_case("chain")
                        && previous.eq_ignore_ascii_case("and")
                        && !before_previous.eq_ignore_ascii_case("no")
                    {
                        chained = true;
                    }
                    before_previous = previous;
                    previous = word;
                }
                Token::Other => {
                    before_previous = previous;
                    previous = "";
                }
            }
        }
        let is = |i: usize, keyword: &str| words[i].eq_ignore_ascii_case(keyword);
        // Every leading keyword but `create` touches the session; `create`
        // only for a temporary object.
        self.touches_session |=
            !is(0, "create") || (1..words.len()).any(|i| is(i, "temp") || is(i, "temporary"));
        if is(0, "begin") || is(0, "start") {
            self.opens_transaction = true;
        }
        if (is(0, "commit") || is(0, "end") || is(0, "rollback") || is(0, "abort")) && chained {
            self.opens_transaction = true;
        }
        if is(0, "set") || is(0, "reset") {
            // `SET LOCAL` ends with the transaction, which the return path
            // rolls back or the user committed; `SET SESSION x` is `SET x`.
            let first = if is(1, "session") && !is(2, "authorization") {
                2
            } else {
                1
            };
            if is(1, "local") {
                return;
            }
            if is(first, "role")
                || is(first, "authorization")
                || is(1, "session") && is(2, "authorization")
            {
                self.changes_role = true;
            }
            if is(first, "search_path") || is(first, "schema") {
                self.changes_search_path = true;
            }
            if is(0, "reset") && is(1, "all") {
                self.changes_role = true;
                self.changes_search_path = true;
            }
        }
        if is(0, "discard") && (is(1, "all") || is(1, "plans")) {
            self.drops_statements = true;
            if is(1, "all") {
                self.changes_role = true;
                self.changes_search_path = true;
            }
        }
        if is(0, "deallocate") {
            self.drops_statements = true;
        }
    }

    /// Changes made from inside a function call or a `DO` body, which no
    /// keyword reading can follow: any mention of `set_config`, of the
    /// search path, or of setting a role counts; and for
    /// [`touches_session`](Self::touches_session), any mention of a
    /// session advisory lock, `currval`, `lastval`, `dblink_connect` or
    /// `INTO TEMP`.
    fn add_anywhere(&mut self, sql: &str) {
        // One pass: only where a phrase may start is anything compared.
        let bytes = sql.as_bytes();
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        for at in 0..bytes.len().saturating_sub(1) {
            let first = bytes[at].to_ascii_lowercase();
            if matches!(first, b'p' | b'c' | b'l' | b'd' | b'i') {
                self.touches_session |=
                    Self::session_phrase_at(&bytes[at..], at == 0 || !is_word(bytes[at - 1]));
                continue;
            }
            if !(first == b's' && bytes[at + 1].eq_ignore_ascii_case(&b'e')) {
                continue;
            }
            let rest = &bytes[at..];
            let starts = |phrase: &str| {
                rest.len() >= phrase.len()
                    && rest[..phrase.len()].eq_ignore_ascii_case(phrase.as_bytes())
            };
            // `set role`, `session authorization` as whole words only: not
            // `SET role_name = ...` in an UPDATE.
            let whole = |phrase: &str| {
                starts(phrase)
                    && (at == 0 || !is_word(bytes[at - 1]))
                    && rest.get(phrase.len()).is_none_or(|&b| !is_word(b))
            };
            if starts("set_config") {
                self.touches_session = true;
                self.changes_role = true;
                self.changes_search_path = true;
            } else if starts("search_path") {
                self.changes_search_path = true;
            } else if whole("set role") || whole("session authorization") {
                self.changes_role = true;
            }
        }
    }
}

impl SqlEffects {
    /// Whether `rest` starts with one of the phrases that touch the
    /// session wherever they appear (`word_start`: no letter before it).
    fn session_phrase_at(rest: &[u8], word_start: bool) -> bool {
        let starts = |phrase: &str| {
            rest.len() >= phrase.len()
                && rest[..phrase.len()].eq_ignore_ascii_case(phrase.as_bytes())
        };
        let starts_word = |phrase: &str| {
            word_start
                && starts(phrase)
                && rest
                    .get(phrase.len())
                    .is_none_or(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        };
        // The `_xact_` advisory locks end with the transaction: allowed.
        starts("pg_advisory_lock")
            || starts("pg_advisory_unlock")
            || starts("pg_try_advisory_lock")
            || starts("currval")
            || starts("lastval")
            || starts("dblink_connect")
            || starts_word("into temp")
            || starts_word("into temporary")
    }
}

/// Whether a statement starting with `word` may matter here.
fn is_leading_keyword(word: &str) -> bool {
    [
        "create",
        "do",
        "listen",
        "unlisten",
        "prepare",
        "execute",
        "declare",
        "fetch",
        "move",
        "close",
        "load",
        "savepoint",
        "release",
        "begin",
        "start",
        "commit",
        "end",
        "rollback",
        "abort",
        "set",
        "reset",
        "discard",
        "deallocate",
    ]
    .iter()
    .any(|keyword| word.eq_ignore_ascii_case(keyword))
}

enum Token<'a> {
    /// A bare word (keyword or unquoted identifier).
    Word(&'a str),
    /// Anything else: punctuation, numbers, quoted text, parameters.
    Other,
    /// The `;` that ends a statement.
    End,
}

/// Whether `sql`'s first keyword (after comments) is `COPY`: what
/// `copy_in` and `copy_out` accept.
pub(super) fn is_copy(sql: &str) -> bool {
    matches!(
        Scanner::new(sql).next_token(),
        Some(Token::Word(word)) if word.eq_ignore_ascii_case("copy")
    )
}

/// The first keyword of `sql` after comments and opening parentheses
/// (`SELECT`, `insert`, `WITH`...), as written, for the
/// `db.operation.name` of a statement's span; `None` when it starts with
/// something else.
pub(super) fn operation_name(sql: &str) -> Option<&str> {
    let mut scanner = Scanner::new(sql);
    loop {
        match scanner.next_token()? {
            Token::Word(word) => return Some(word),
            Token::Other if sql.as_bytes().get(scanner.at - 1) == Some(&b'(') => {}
            _ => return None,
        }
    }
}

/// Splits SQL into tokens the way the server's lexer does for the parts
/// that matter here: comments (nested `/* */`), string literals (with `''`
/// and, in `E''` strings, backslash escapes), quoted identifiers and
/// dollar-quoted bodies are single tokens, so nothing inside them can end a
/// statement or pass for a keyword.
struct Scanner<'a> {
    sql: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn new(sql: &'a str) -> Self {
        Self { sql, at: 0 }
    }

    fn at_end(&self) -> bool {
        self.at >= self.sql.len()
    }

    fn rest(&self) -> &'a [u8] {
        &self.sql.as_bytes()[self.at..]
    }

    fn next_token(&mut self) -> Option<Token<'a>> {
        loop {
            let rest = self.rest();
            let &first = rest.first()?;
            match first {
                b if b.is_ascii_whitespace() => self.at += 1,
                b'-' if rest.get(1) == Some(&b'-') => {
                    self.at += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                }
                b'/' if rest.get(1) == Some(&b'*') => self.skip_block_comment(),
                b';' => {
                    self.at += 1;
                    return Some(Token::End);
                }
                b'\'' => {
                    let escapes =
                        self.at > 0 && matches!(self.sql.as_bytes()[self.at - 1], b'e' | b'E');
                    self.skip_quoted(b'\'', escapes);
                    return Some(Token::Other);
                }
                b'"' => {
                    self.skip_quoted(b'"', false);
                    return Some(Token::Other);
                }
                b'$' => {
                    self.skip_dollar();
                    return Some(Token::Other);
                }
                b if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => {
                    let start = self.at;
                    let len = rest
                        .iter()
                        .position(|&b| {
                            !(b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80)
                        })
                        .unwrap_or(rest.len());
                    self.at += len;
                    // An `E'...'` string starts right after its `E`.
                    return Some(Token::Word(&self.sql[start..self.at]));
                }
                _ => {
                    self.at += 1;
                    return Some(Token::Other);
                }
            }
        }
    }

    /// Skips to just after the `;` that ends the current statement.
    fn skip_statement(&mut self) {
        while let Some(token) = self.next_token() {
            if matches!(token, Token::End) {
                return;
            }
        }
    }

    fn skip_block_comment(&mut self) {
        let bytes = self.sql.as_bytes();
        let mut depth = 0_usize;
        while self.at < bytes.len() {
            if bytes[self.at] == b'/' && bytes.get(self.at + 1) == Some(&b'*') {
                depth += 1;
                self.at += 2;
            } else if bytes[self.at] == b'*' && bytes.get(self.at + 1) == Some(&b'/') {
                depth -= 1;
                self.at += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.at += 1;
            }
        }
    }

    fn skip_quoted(&mut self, quote: u8, backslash_escapes: bool) {
        let bytes = self.sql.as_bytes();
        self.at += 1;
        while self.at < bytes.len() {
            let b = bytes[self.at];
            if backslash_escapes && b == b'\\' {
                self.at += 2;
            } else if b == quote {
                // A doubled quote is an escaped quote, not the end.
                if bytes.get(self.at + 1) == Some(&quote) {
                    self.at += 2;
                } else {
                    self.at += 1;
                    return;
                }
            } else {
                self.at += 1;
            }
        }
        self.at = bytes.len();
    }

    /// `$tag$ ... $tag$` (the tag may be empty); `$1` is a parameter.
    fn skip_dollar(&mut self) {
        let rest = self.rest();
        let tag_len = rest[1..]
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))
            .unwrap_or(rest.len() - 1);
        let is_tag =
            rest.get(1 + tag_len) == Some(&b'$') && !rest.get(1).is_some_and(u8::is_ascii_digit);
        if !is_tag {
            self.at += 1;
            return;
        }
        let delimiter = &self.sql[self.at..self.at + tag_len + 2];
        let body_start = self.at + delimiter.len();
        self.at = match self.sql[body_start..].find(delimiter) {
            Some(end) => body_start + end + delimiter.len(),
            None => self.sql.len(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opens(sql: &str) -> bool {
        SqlEffects::of_batch(sql).opens_transaction
    }

    #[test]
    fn transaction_openers_in_any_statement_of_a_batch() {
        assert!(opens("BEGIN"));
        assert!(opens("SET application_name = 'x'; BEGIN"));
        assert!(opens(
            "select 1; start transaction isolation level serializable"
        ));
        assert!(opens("/* hint */ begin"));
        assert!(opens("-- note\nSTART TRANSACTION"));
        assert!(opens("BEGIN; INSERT INTO t VALUES (1); COMMIT AND CHAIN"));
        assert!(opens("COMMIT AND CHAIN"));
        assert!(opens("rollback and chain"));
        assert!(opens("END AND CHAIN"));
    }

    #[test]
    fn words_that_do_not_open_a_transaction() {
        assert!(!opens("SELECT 1"));
        assert!(!opens("SELECT start_date, begins FROM t"));
        assert!(!opens("-- START TRANSACTION\nSELECT 1"));
        assert!(!opens("/* BEGIN */ SELECT 1"));
        assert!(!opens("/* nested /* BEGIN */ still comment */ SELECT 1"));
        assert!(!opens("DO $$ BEGIN PERFORM 1; END $$"));
        assert!(!opens("DO $body$ BEGIN PERFORM 1; END $body$"));
        assert!(!opens("SELECT 'x; BEGIN'"));
        assert!(!opens("SELECT E'it\\'s; BEGIN'"));
        assert!(!opens("SELECT \"begin\" FROM t"));
        assert!(!opens("SELECT $1::text; SELECT 2"));
        assert!(!opens("COMMIT"));
        assert!(!opens("COMMIT AND NO CHAIN"));
        assert!(!opens(""));
        assert!(!opens(
            "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql"
        ));
    }

    #[test]
    fn one_statement_reads_only_its_own_keywords() {
        assert!(SqlEffects::of_statement("  begin isolation level serializable").opens_transaction);
        assert!(!SqlEffects::of_statement("SELECT 'BEGIN'").opens_transaction);
    }

    #[test]
    fn role_and_search_path_changes() {
        let e = SqlEffects::of_batch("SET ROLE other; SET search_path = other_schema");
        assert!(e.changes_role && e.changes_search_path && !e.opens_transaction);
        assert!(SqlEffects::of_batch("set session role x").changes_role);
        assert!(SqlEffects::of_batch("SET SESSION AUTHORIZATION x").changes_role);
        assert!(SqlEffects::of_batch("RESET ROLE").changes_role);
        assert!(SqlEffects::of_batch("SET SCHEMA 'x'").changes_search_path);
        assert!(
            SqlEffects::of_statement("SELECT set_config('search_path', 'x', false)")
                .changes_search_path
        );
        assert!(SqlEffects::of_batch("DO $$ BEGIN EXECUTE 'SET ROLE x'; END $$").changes_role);
        let all = SqlEffects::of_batch("RESET ALL");
        assert!(all.changes_role && all.changes_search_path);
        let discard = SqlEffects::of_batch("DISCARD ALL");
        assert!(discard.drops_statements && discard.changes_role);
        assert!(SqlEffects::of_batch("DEALLOCATE ALL").drops_statements);
    }

    #[test]
    fn local_and_unrelated_settings_change_nothing_kept() {
        let only_touched = SqlEffects {
            touches_session: true,
            ..SqlEffects::default()
        };
        assert_eq!(SqlEffects::of_batch("SET LOCAL ROLE x"), only_touched);
        assert_eq!(
            SqlEffects::of_batch("SET statement_timeout = 0"),
            only_touched
        );
        assert_eq!(
            SqlEffects::of_batch("UPDATE t SET role_name = 'a'"),
            SqlEffects::default()
        );
        assert_eq!(SqlEffects::of_statement("SELECT 1"), SqlEffects::default());
    }

    #[test]
    fn what_touches_the_session() {
        let touches = |sql: &str| SqlEffects::of_statement(sql).touches_session;
        for sql in [
            "SET application_name = 'x'",
            "set local work_mem = '1MB'",
            "RESET ALL",
            "BEGIN",
            "COMMIT",
            "LISTEN ch",
            "UNLISTEN *",
            "PREPARE p AS SELECT 1",
            "EXECUTE p",
            "DEALLOCATE p",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "FETCH 1 FROM c",
            "CLOSE c",
            "DISCARD TEMP",
            "LOAD 'auto_explain'",
            "CREATE TEMP TABLE t (a int)",
            "create local temporary table t (a int)",
            "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
            "SELECT 1 INTO TEMP t",
            "SELECT pg_advisory_lock(1)",
            "SELECT PG_TRY_ADVISORY_LOCK_SHARED(1)",
            "SELECT pg_advisory_unlock_all()",
            "SELECT currval('s')",
            "SELECT lastval()",
            "SELECT set_config('x.y', '1', false)",
            "SELECT dblink_connect('c', 'dbname=x')",
            "/* c */ savepoint a",
            "DO $$ BEGIN PERFORM 1; END $$",
        ] {
            assert!(touches(sql), "{sql}");
        }
        for sql in [
            "SELECT 1",
            "SELECT $1::int4 + 1",
            "INSERT INTO t VALUES (1) RETURNING id",
            "UPDATE t SET role_name = 'a', temp = 2",
            "SELECT pg_advisory_xact_lock(1)",
            "SELECT nextval('s')",
            "CREATE TABLE t (a int)",
            "CREATE INDEX ON t (temp)",
            "SELECT 'x' AS linto_temp",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "NOTIFY ch",
        ] {
            assert!(!touches(sql), "{sql}");
        }
        assert!(SqlEffects::of_batch("SELECT 1; SET x = 1").touches_session);
    }

    #[test]
    fn copy_statements_are_known_by_their_first_keyword() {
        assert!(is_copy("COPY t FROM STDIN"));
        assert!(is_copy("  -- load\n/* rows */ copy t (a) FROM stdin"));
        assert!(!is_copy("SELECT 1; COPY t FROM STDIN"));
        assert!(!is_copy("\"copy\" t"));
        assert!(!is_copy("copying"));
        assert!(!is_copy(""));
    }

    #[test]
    fn the_operation_name_is_the_first_keyword() {
        use super::operation_name;
        assert_eq!(operation_name("SELECT 1"), Some("SELECT"));
        assert_eq!(
            operation_name("  -- note\n /* c */ insert into t values (1)"),
            Some("insert")
        );
        assert_eq!(operation_name("((select 1))"), Some("select"));
        assert_eq!(operation_name("'x'"), None);
        assert_eq!(operation_name(""), None);
    }

    #[test]
    fn unterminated_input_never_panics() {
        for sql in [
            "'",
            "\"",
            "$$",
            "$a$ x",
            "/*",
            "/* /*",
            "E'\\",
            "$",
            "$1",
            "--",
            "é; BEGIN",
        ] {
            let _ = SqlEffects::of_batch(sql);
            let _ = SqlEffects::of_statement(sql);
        }
        assert!(opens("é; BEGIN"));
    }
}
