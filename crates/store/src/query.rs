//! Building the WHERE clause of a filtered read once for both SQL dialects: placeholders,
//! lists, JSON lookups and case-insensitive matching differ; the filter logic does not.

use gridroll_domain::compact;

pub use crate::db::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// How a statement that reads rows it will change asks to lock them: PostgreSQL locks
    /// them until the transaction ends; SQLite's one writer has the whole database.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// How a statement claiming one of many rows passes over those another transaction is
    /// claiming (PostgreSQL); SQLite's one writer never meets one.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// A statement written with PostgreSQL's `$n` placeholders, in this dialect's: SQLite
    /// reads `$1` as a parameter named "$1", numbered by first appearance, so it is
    /// written `?1` there.
    pub fn render(self, sql: &str) -> std::borrow::Cow<'_, str> {
        match self {
            Dialect::Postgres => std::borrow::Cow::Borrowed(sql),
            Dialect::Sqlite => {
                let mut out = String::with_capacity(sql.len());
                let mut chars = sql.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                        out.push('?');
                    } else {
                        out.push(c);
                    }
                }
                std::borrow::Cow::Owned(out)
            }
        }
    }

    /// The strings of a list field of meter data, as a table of one column `tag`, for
    /// `EXISTS (SELECT 1 FROM <this> WHERE tag ...)`.
    pub fn compact_list(self, column: &str, path: &str) -> String {
        let at = positions(path);
        match self {
            Dialect::Sqlite => format!(
                "(SELECT value AS tag FROM json_each({column}, '${}'))",
                sqlite_path(&at)
            ),
            Dialect::Postgres => format!(
                "json_array_elements_text({}::json #> '{{{}}}') AS t(tag)",
                pg_json(column),
                pg_path(&at)
            ),
        }
    }
}

/// A JSON text column as PostgreSQL's functions can read it. A NUL escaped in the text
/// (`\u0000`, which a release before validation refused control characters may have
/// stored) makes `#>>` fail for the whole statement; swapping the six characters for
/// those of U+FFFD keeps the JSON valid whatever precedes them, so no stored value can
/// break a read.
fn pg_json(column: &str) -> String {
    format!("replace({column}, '\\u0000', '\\ufffd')")
}

fn positions(path: &str) -> Vec<usize> {
    compact::position(path).unwrap_or_else(|| panic!("the meter model has no field {path}"))
}

fn sqlite_path(at: &[usize]) -> String {
    at.iter().map(|i| format!("[{i}]")).collect()
}

fn pg_path(at: &[usize]) -> String {
    at.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Conditions joined with AND, and the parameters they bind.
#[derive(Debug)]
pub struct Conditions {
    dialect: Dialect,
    clauses: Vec<String>,
    pub params: Vec<Value>,
}

impl Conditions {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            clauses: Vec::new(),
            params: Vec::new(),
        }
    }

    /// The dialect the conditions are written in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, param: Value) -> String {
        self.params.push(param);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }

    pub fn push(&mut self, clause: impl Into<String>) {
        self.clauses.push(clause.into());
    }

    /// `expr = value`
    pub fn eq(&mut self, expr: &str, value: Value) {
        let p = self.bind(value);
        self.push(format!("{expr} = {p}"));
    }

    /// `expr IN (values)`; an empty list matches nothing.
    pub fn one_of(&mut self, expr: &str, values: impl IntoIterator<Item = Value>) {
        let placeholders: Vec<String> = values.into_iter().map(|v| self.bind(v)).collect();
        if placeholders.is_empty() {
            self.push("1 = 0");
        } else {
            self.push(format!("{expr} IN ({})", placeholders.join(", ")));
        }
    }

    /// A condition that holds for no row.
    pub fn nothing(&mut self) {
        self.push("1 = 0");
    }

    /// Any of `exprs` contains any of `terms`, ignoring case.
    pub fn contains_any(&mut self, exprs: &[String], terms: &[String]) {
        let clause = self.matching(exprs, terms);
        self.push(clause);
    }

    /// The clause of [`Conditions::contains_any`], bound here but not added, for use
    /// inside a larger clause.
    pub fn matching(&mut self, exprs: &[String], terms: &[String]) -> String {
        let mut alternatives = Vec::new();
        for term in terms {
            let pattern = format!("%{}%", escape_like(&term.to_lowercase()));
            let p = self.bind(Value::Text(pattern));
            for expr in exprs {
                alternatives.push(format!("lower({expr}) LIKE {p} ESCAPE '\\'"));
            }
        }
        if alternatives.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!("({})", alternatives.join(" OR "))
        }
    }

    /// The joined conditions, `1 = 1` when there are none.
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1 = 1".to_owned()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_dialect() {
        let mut sqlite = Conditions::new(Dialect::Sqlite);
        sqlite.eq("a", Value::Int(1));
        sqlite.one_of("b", [Value::Int(2), Value::Int(3)]);
        assert_eq!(sqlite.sql(), "a = ?1 AND b IN (?2, ?3)");
        let mut postgres = Conditions::new(Dialect::Postgres);
        postgres.eq("a", Value::Int(1));
        postgres.one_of("b", []);
        assert_eq!(postgres.sql(), "a = $1 AND 1 = 0");
    }

    #[test]
    fn statements_are_rendered_with_each_dialects_placeholders() {
        let sql = "UPDATE t SET a = $2 WHERE id = $1 AND b = $10";
        assert_eq!(Dialect::Postgres.render(sql), sql);
        assert_eq!(
            Dialect::Sqlite.render(sql),
            "UPDATE t SET a = ?2 WHERE id = ?1 AND b = ?10"
        );
    }

    #[test]
    fn search_terms_are_escaped_and_lowercased() {
        let mut c = Conditions::new(Dialect::Sqlite);
        c.contains_any(&["x".to_owned()], &["50%_Off\\".to_owned()]);
        assert_eq!(c.sql(), "(lower(x) LIKE ?1 ESCAPE '\\')");
        assert!(matches!(&c.params[0], Value::Text(t) if t == "%50\\%\\_off\\\\%"));
    }
}
