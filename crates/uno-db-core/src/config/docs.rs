//! The tables of `docs/configuration.md` that the field table determines,
//! generated from it; the test below fails, printing the tables to paste,
//! when the guide is out of step.

use std::fmt::Write as _;

use crate::config::table::FIELDS;

/// The guide, as compiled in (a change to it rebuilds the tests).
const GUIDE: &str = include_str!("../../../../docs/configuration.md");

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn code_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Field, type, default and meaning.
fn fields() -> String {
    let mut out =
        "| field | type | default (`defaults::`) | meaning |\n|---|---|---|---|\n".to_owned();
    for field in FIELDS {
        let mut default = (field.describe_default)();
        if let Some(name) = field.default_const {
            let _ = write!(default, " (`{name}`)");
        }
        let doc: Vec<&str> = field.doc.iter().map(|line| line.trim()).collect();
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} |",
            field.name,
            field.rust_type,
            cell(&default),
            cell(&doc.join(" "))
        );
    }
    out
}

/// The rule of every field that has one.
fn rules() -> String {
    let mut out = "| field | rule |\n|---|---|\n".to_owned();
    for field in FIELDS {
        if let Some(rule) = (field.describe_rule)() {
            let _ = writeln!(out, "| `{}` | {} |", field.name, cell(&rule));
        }
    }
    out
}

/// URL query and libpq parameters.
fn parameters() -> String {
    let mut out = "| parameter | field | value |\n|---|---|---|\n".to_owned();
    for field in FIELDS.iter().filter(|f| !f.params.is_empty()) {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            code_list(field.params),
            field.name,
            cell(field.syntax)
        );
    }
    out
}

/// Environment variables, `UNO_DB_*` first, then libpq's.
fn environment() -> String {
    let mut out = "| variable | field |\n|---|---|\n".to_owned();
    let ranks = FIELDS.iter().map(|f| f.env.len()).max().unwrap_or(0);
    for rank in 0..ranks {
        for field in FIELDS {
            if let Some(name) = field.env.get(rank) {
                let _ = writeln!(out, "| `{name}` | `{}` |", field.name);
            }
        }
    }
    out
}

/// Every generated table, by the name its markers in the guide carry.
fn tables() -> [(&'static str, String); 4] {
    [
        ("fields", fields()),
        ("rules", rules()),
        ("parameters", parameters()),
        ("environment", environment()),
    ]
}

/// The text between `<!-- BEGIN GENERATED name ... -->` and
/// `<!-- END GENERATED name -->`.
fn section<'a>(guide: &'a str, name: &str) -> Option<&'a str> {
    let begin = guide.find(&format!("<!-- BEGIN GENERATED {name} "))?;
    let body = begin + guide[begin..].find('\n')? + 1;
    let end = body + guide[body..].find(&format!("<!-- END GENERATED {name} -->"))?;
    Some(&guide[body..end])
}

#[test]
fn the_guide_tables_are_generated_from_the_field_table() {
    let mut stale = Vec::new();
    for (name, expected) in tables() {
        if section(GUIDE, name) != Some(expected.as_str()) {
            stale.push(format!(
                "<!-- BEGIN GENERATED {name} (from crates/uno-db-core/src/config/table.rs) -->\n\
                 {expected}<!-- END GENERATED {name} -->"
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "docs/configuration.md is out of step with the field table \
         (crates/uno-db-core/src/config/table.rs); replace these tables:\n\n{}\n",
        stale.join("\n\n")
    );
}

#[test]
fn sections_are_found_between_their_markers() {
    let guide = "a\n<!-- BEGIN GENERATED x (note) -->\n| t |\n<!-- END GENERATED x -->\nb";
    assert_eq!(section(guide, "x"), Some("| t |\n"));
    assert_eq!(section(guide, "y"), None);
}
