//! The `q` search language (the subset of reference §11) and `fields` partial responses.
//!
//! Accepted `q` clauses, joined by `and` (`or`, `not` and parentheses are refused with 400, so a
//! client relying on them notices rather than getting a wrong listing):
//!
//! | clause | matches |
//! |---|---|
//! | `mimeType contains 'image/'`, `mimeType = '…'`, `mimeType != '…'` | by type |
//! | `trashed = true\|false`, `trashed != …` | by trash state |
//! | `'{folder id}' in parents` | direct children of a folder |
//! | `modifiedTime > '2026-01-01T00:00:00Z'` (also `>=`, `<`, `<=`, `=`) | by modification time |
//! | `name = '…'`, `name contains '…'` | by name |
//! | `appProperties has { key='k' and value='v' }` | by a private property |
//!
//! `fields` is Google's partial-response syntax: `a,b(c,d(e)),*`. Keys not selected are left out
//! at every level, the top level included.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Stored;

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`.
    Eq,
    /// `!=`.
    Ne,
    /// `contains`.
    Contains,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
}

/// One `q` clause.
#[derive(Clone, Debug, PartialEq)]
pub enum Clause {
    /// `mimeType op 'x'`.
    Mime(Op, String),
    /// `trashed op bool`.
    Trashed(Op, bool),
    /// `'id' in parents`.
    InParents(String),
    /// `modifiedTime op 'time'`.
    Modified(Op, OffsetDateTime),
    /// `name op 'x'`.
    Name(Op, String),
    /// `appProperties has { key='k' and value='v' }`.
    AppProperty(String, String),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    Sym(String),
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('\\') => s.push(chars.next().ok_or("unterminated string")?),
                    Some('\'') => break,
                    Some(c) => s.push(c),
                    None => return Err("unterminated string".into()),
                }
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    s.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Tok::Word(s));
        } else {
            chars.next();
            let mut s = c.to_string();
            if matches!(c, '!' | '<' | '>') && chars.peek() == Some(&'=') {
                chars.next();
                s.push('=');
            }
            out.push(Tok::Sym(s));
        }
    }
    Ok(out)
}

fn op_of(t: Option<&Tok>) -> Result<Op, String> {
    match t {
        Some(Tok::Sym(s)) => match s.as_str() {
            "=" => Ok(Op::Eq),
            "!=" => Ok(Op::Ne),
            ">" => Ok(Op::Gt),
            ">=" => Ok(Op::Ge),
            "<" => Ok(Op::Lt),
            "<=" => Ok(Op::Le),
            _ => Err(format!("unknown operator {s}")),
        },
        Some(Tok::Word(w)) if w == "contains" => Ok(Op::Contains),
        other => Err(format!("expected an operator, got {other:?}")),
    }
}

fn string_of(t: Option<&Tok>) -> Result<String, String> {
    match t {
        Some(Tok::Str(s)) => Ok(s.clone()),
        other => Err(format!("expected a quoted string, got {other:?}")),
    }
}

/// Parses a `q` expression.
///
/// # Errors
///
/// A clause outside the supported subset, with why.
pub fn parse_q(q: &str) -> Result<Vec<Clause>, String> {
    let toks = tokenize(q)?;
    let mut i = 0;
    let mut clauses = Vec::new();
    let at = |i: usize| toks.get(i);
    while i < toks.len() {
        let clause = match at(i) {
            Some(Tok::Word(w)) if w == "mimeType" || w == "name" => {
                let op = op_of(at(i + 1))?;
                let v = string_of(at(i + 2))?;
                i += 3;
                if w == "name" {
                    Clause::Name(op, v)
                } else {
                    Clause::Mime(op, v)
                }
            }
            Some(Tok::Word(w)) if w == "trashed" => {
                let op = op_of(at(i + 1))?;
                let v = match at(i + 2) {
                    Some(Tok::Word(b)) if b == "true" => true,
                    Some(Tok::Word(b)) if b == "false" => false,
                    other => return Err(format!("trashed takes true or false, got {other:?}")),
                };
                i += 3;
                Clause::Trashed(op, v)
            }
            Some(Tok::Word(w)) if w == "modifiedTime" => {
                let op = op_of(at(i + 1))?;
                let v = string_of(at(i + 2))?;
                let t = OffsetDateTime::parse(&v, &Rfc3339)
                    .map_err(|_| format!("modifiedTime needs an RFC 3339 time, got {v}"))?;
                i += 3;
                Clause::Modified(op, t)
            }
            Some(Tok::Str(id)) => {
                match (at(i + 1), at(i + 2)) {
                    (Some(Tok::Word(a)), Some(Tok::Word(b))) if a == "in" && b == "parents" => {}
                    _ => return Err("a quoted value must be followed by `in parents`".into()),
                }
                i += 3;
                Clause::InParents(id.clone())
            }
            Some(Tok::Word(w)) if w == "appProperties" => {
                // appProperties has { key='k' and value='v' }
                let expect = |j: usize, want: &str| match at(j) {
                    Some(Tok::Word(x)) | Some(Tok::Sym(x)) if x == want => Ok(()),
                    other => Err(format!("expected {want}, got {other:?}")),
                };
                expect(i + 1, "has")?;
                expect(i + 2, "{")?;
                expect(i + 3, "key")?;
                expect(i + 4, "=")?;
                let k = string_of(at(i + 5))?;
                expect(i + 6, "and")?;
                expect(i + 7, "value")?;
                expect(i + 8, "=")?;
                let v = string_of(at(i + 9))?;
                expect(i + 10, "}")?;
                i += 11;
                Clause::AppProperty(k, v)
            }
            other => return Err(format!("unsupported query term {other:?}")),
        };
        clauses.push(clause);
        match at(i) {
            None => {}
            Some(Tok::Word(w)) if w == "and" => i += 1,
            Some(other) => return Err(format!("only `and` joins clauses here, got {other:?}")),
        }
    }
    Ok(clauses)
}

fn cmp_ok<T: PartialOrd>(op: Op, a: &T, b: &T) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Contains => false,
    }
}

/// Whether a file matches every clause.
pub(crate) fn matches(clauses: &[Clause], f: &Stored) -> bool {
    clauses.iter().all(|c| match c {
        Clause::Mime(Op::Contains, v) => f.mime.contains(v.as_str()),
        Clause::Mime(op, v) => cmp_ok(*op, &f.mime, v),
        Clause::Name(Op::Contains, v) => f.name.contains(v.as_str()),
        Clause::Name(op, v) => cmp_ok(*op, &f.name, v),
        Clause::Trashed(op, v) => cmp_ok(*op, &f.trashed, v),
        Clause::InParents(id) => &f.parent == id,
        Clause::Modified(op, t) => cmp_ok(*op, &f.modified, t),
        Clause::AppProperty(k, v) => f.app_properties.get(k) == Some(v),
    })
}

/// One selected key, with what is selected inside it (`None`: everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Key (`*` for every key).
    pub name: String,
    /// Nested selection.
    pub inner: Option<Vec<Selection>>,
}

/// Parses a `fields` value.
///
/// # Errors
///
/// Unbalanced parentheses or an empty name.
pub fn parse_fields(s: &str) -> Result<Vec<Selection>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut pos = 0;
    let out = parse_list(&chars, &mut pos, 0)?;
    if pos != chars.len() {
        return Err(format!("unexpected ) at {pos}"));
    }
    Ok(out)
}

fn parse_list(c: &[char], pos: &mut usize, depth: usize) -> Result<Vec<Selection>, String> {
    if depth > 8 {
        return Err("fields nested too deep".into());
    }
    let mut out = Vec::new();
    loop {
        let mut name = String::new();
        while let Some(&ch) = c.get(*pos) {
            if ch == ',' || ch == '(' || ch == ')' {
                break;
            }
            name.push(ch);
            *pos += 1;
        }
        let name = name.trim().to_owned();
        // `files/id` is shorthand for `files(id)`.
        let (name, tail) = match name.split_once('/') {
            Some((a, b)) => (a.to_owned(), Some(b.to_owned())),
            None => (name, None),
        };
        if name.is_empty() {
            return Err("empty field name".into());
        }
        let mut inner = tail.map(|t| parse_fields(&t)).transpose()?;
        if c.get(*pos) == Some(&'(') {
            *pos += 1;
            inner = Some(parse_list(c, pos, depth + 1)?);
            if c.get(*pos) != Some(&')') {
                return Err("missing )".into());
            }
            *pos += 1;
        }
        out.push(Selection { name, inner });
        match c.get(*pos) {
            Some(',') => *pos += 1,
            _ => return Ok(out),
        }
    }
}

/// Keeps only the selected keys of `v` (objects; arrays apply the selection to each element).
pub fn select(v: &Value, sel: &[Selection]) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|i| select(i, sel)).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for s in sel {
                if s.name == "*" {
                    for (k, val) in map {
                        out.entry(k.clone()).or_insert_with(|| val.clone());
                    }
                    continue;
                }
                if let Some(val) = map.get(&s.name) {
                    let picked = match &s.inner {
                        Some(inner) => select(val, inner),
                        None => val.clone(),
                    };
                    out.insert(s.name.clone(), picked);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_image_query_of_the_reference_parses() {
        let q = parse_q("mimeType contains 'image/' and trashed = false").unwrap();
        assert_eq!(
            q,
            vec![
                Clause::Mime(Op::Contains, "image/".into()),
                Clause::Trashed(Op::Eq, false)
            ]
        );
        assert!(parse_q("'0Aroot' in parents and name = 'it\\'s'").is_ok());
        assert!(parse_q("appProperties has { key='a' and value='b' }").is_ok());
        assert!(parse_q("mimeType = 'a' or trashed = true").is_err());
        assert!(parse_q("not trashed").is_err());
    }

    #[test]
    fn fields_select_nested_and_top_level_keys() {
        let sel = parse_fields("nextPageToken,files(id,imageMediaMetadata(width))").unwrap();
        let v = json!({"kind": "drive#fileList", "nextPageToken": "t",
            "files": [{"id": "1", "name": "a", "imageMediaMetadata": {"width": 3, "height": 4}}]});
        assert_eq!(
            select(&v, &sel),
            json!({"nextPageToken": "t", "files": [{"id": "1", "imageMediaMetadata": {"width": 3}}]})
        );
        assert_eq!(
            select(&v, &parse_fields("files/id").unwrap()),
            json!({"files": [{"id": "1"}]})
        );
        assert!(parse_fields("files(id").is_err());
    }
}
