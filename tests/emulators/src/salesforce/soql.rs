//! The slice of SOQL the emulated org answers: enough for a connector to scope, page and filter
//! what it lists, and strict enough that a malformed or unsupported query fails the way Salesforce
//! fails it (reference §1.2).
//!
//! | form | example |
//! |---|---|
//! | select list | `SELECT Id, ContentDocumentId, SystemModstamp` (plain fields only) |
//! | object | `FROM ContentVersion` |
//! | comparison | `Status = 'New'`, `ContentSize > 1000`, `SystemModstamp >= 2024-05-01T00:00:00Z`, `IsLatest = true`, `X != null` |
//! | list | `FileExtension IN ('jpg','png')`, `NOT IN` |
//! | semi-join | `LinkedEntityId IN (SELECT Id FROM Case WHERE Status = 'New')` |
//! | pattern | `ContentType LIKE 'image/%'` (`%` and `_`) |
//! | logic | `AND`, `OR`, `NOT`, parentheses |
//! | tail | `ORDER BY SystemModstamp ASC, Id DESC`, `LIMIT 10` |
//!
//! Keywords and field names are case-insensitive; records come back with the canonical names.
//! Anything else (relationship fields, aggregate functions, date literals such as `TODAY`) is a
//! `MALFORMED_QUERY`, so a connector that starts relying on more SOQL fails loudly here rather
//! than passing against an emulator that guesses. Parsing is bounded: a query is at most
//! [`MAX_QUERY_CHARS`] long and nests at most [`MAX_DEPTH`] deep.

use std::cmp::Ordering;

use serde_json::Value;
use time::OffsetDateTime;

/// Salesforce's limit on the length of a SOQL statement (100,000 characters).
pub const MAX_QUERY_CHARS: usize = 100_000;
/// Deepest nesting of parentheses and sub-queries accepted.
pub const MAX_DEPTH: usize = 32;

/// Field types the evaluator distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// An 18-character record id.
    Id,
    /// Text.
    Text,
    /// `true`/`false`.
    Bool,
    /// A whole number.
    Int,
    /// A datetime, stored as Salesforce prints it (`2024-05-01T10:00:00.000+0000`).
    DateTime,
}

/// Why a query was refused: Salesforce's `errorCode` and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    /// `MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE`, ...
    pub code: &'static str,
    /// The message Salesforce would send.
    pub message: String,
}

impl QueryError {
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        QueryError {
            code: "MALFORMED_QUERY",
            message: message.into(),
        }
    }
}

/// A parsed `SELECT`.
#[derive(Clone, Debug)]
pub struct Query {
    /// Selected fields as written.
    pub fields: Vec<String>,
    /// The object.
    pub object: String,
    /// The `WHERE` condition.
    pub condition: Option<Condition>,
    /// `ORDER BY` keys: field and ascending.
    pub order: Vec<(String, bool)>,
    /// `LIMIT`.
    pub limit: Option<usize>,
}

/// A `WHERE` condition.
#[derive(Clone, Debug)]
pub enum Condition {
    /// Both.
    And(Box<Condition>, Box<Condition>),
    /// Either.
    Or(Box<Condition>, Box<Condition>),
    /// Not.
    Not(Box<Condition>),
    /// `field op literal`.
    Compare(String, Op, Literal),
    /// `field [NOT] IN (literals)`.
    In(String, bool, Vec<Literal>),
    /// `field [NOT] IN (SELECT ...)`.
    InQuery(String, bool, Box<Query>),
    /// `field LIKE 'pattern'`.
    Like(String, String),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `'text'`
    Text(String),
    /// `42`
    Number(f64),
    /// `true`/`false`
    Bool(bool),
    /// `null`
    Null,
    /// An unquoted datetime literal.
    DateTime(OffsetDateTime),
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(f64),
    DateTime(OffsetDateTime),
    Op(Op),
    Open,
    Close,
    Comma,
}

/// Parses a query.
///
/// # Errors
/// `MALFORMED_QUERY` for anything outside the supported slice.
pub fn parse(soql: &str) -> Result<Query, QueryError> {
    if soql.len() > MAX_QUERY_CHARS {
        return Err(QueryError::malformed(format!(
            "the query is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let tokens = lex(soql)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let q = p.query()?;
    if p.pos != p.tokens.len() {
        return Err(QueryError::malformed(format!(
            "unexpected token: '{}'",
            p.describe_here()
        )));
    }
    Ok(q)
}

fn lex(s: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '=' => {
                out.push(Token::Op(Op::Eq));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Token::Op(Op::Ne));
                i += 2;
            }
            '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('<', Some('=')) => (Op::Le, 2),
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', _) => (Op::Lt, 1),
                    _ => (Op::Gt, 1),
                };
                out.push(Token::Op(op));
                i += len;
            }
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(QueryError::malformed("unterminated string literal")),
                        Some('\\') => {
                            let escaped = chars.get(i + 1).ok_or_else(|| {
                                QueryError::malformed("unterminated string literal")
                            })?;
                            text.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                other => *other,
                            });
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            text.push(*other);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Text(text));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '+')
                }) {
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
                if word.contains('T') && word.contains(':') {
                    out.push(Token::DateTime(parse_datetime_literal(&word).ok_or_else(
                        || QueryError::malformed(format!("invalid datetime literal: {word}")),
                    )?));
                } else {
                    out.push(Token::Number(word.parse().map_err(|_| {
                        QueryError::malformed(format!("unexpected token: '{word}'"))
                    })?));
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
                {
                    i += 1;
                }
                out.push(Token::Word(
                    chars.get(start..i).unwrap_or_default().iter().collect(),
                ));
            }
            other => {
                return Err(QueryError::malformed(format!(
                    "unexpected character: '{other}'"
                )));
            }
        }
    }
    Ok(out)
}

/// `2024-05-01T10:00:00Z`, `…T10:00:00.000Z`, `…T10:00:00+02:00`, `…T10:00:00.000+0000`.
pub fn parse_datetime_literal(s: &str) -> Option<OffsetDateTime> {
    let (main, offset_secs) = if let Some(main) = s.strip_suffix('Z') {
        (main, 0i32)
    } else {
        let split = s.rfind(['+', '-']).filter(|&i| i > 10)?;
        let (main, off) = s.split_at(split);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let digits: String = off.chars().skip(1).filter(char::is_ascii_digit).collect();
        if digits.len() != 4 {
            return None;
        }
        let h: i32 = digits.get(..2)?.parse().ok()?;
        let m: i32 = digits.get(2..)?.parse().ok()?;
        (main, sign * (h * 3600 + m * 60))
    };
    let (date, clock) = main.split_once('T')?;
    let mut d = date.split('-');
    let (y, mo, day) = (d.next()?, d.next()?, d.next()?);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut t = hms.split(':');
    let (h, mi, sec) = (t.next()?, t.next()?, t.next()?);
    let millis: u16 = format!("{:0<3}", frac).get(..3)?.parse().ok()?;
    let date = time::Date::from_calendar_date(
        y.parse().ok()?,
        time::Month::try_from(mo.parse::<u8>().ok()?).ok()?,
        day.parse().ok()?,
    )
    .ok()?;
    let clock =
        time::Time::from_hms_milli(h.parse().ok()?, mi.parse().ok()?, sec.parse().ok()?, millis)
            .ok()?;
    let offset = time::UtcOffset::from_whole_seconds(offset_secs).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_offset(offset)
            .to_offset(time::UtcOffset::UTC),
    )
}

/// Formats an instant the way Salesforce prints datetimes: `2024-05-01T10:00:00.000+0000`.
pub fn format_datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of query".into(),
            Some(Token::Word(w)) => w.clone(),
            Some(Token::Text(t)) => format!("'{t}'"),
            Some(Token::Number(n)) => n.to_string(),
            Some(Token::DateTime(_)) => "datetime".into(),
            Some(Token::Op(_)) => "operator".into(),
            Some(Token::Open) => "(".into(),
            Some(Token::Close) => ")".into(),
            Some(Token::Comma) => ",".into(),
        }
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.keyword(kw) {
            Ok(())
        } else {
            Err(QueryError::malformed(format!(
                "expecting '{kw}', found '{}'",
                self.describe_here()
            )))
        }
    }

    fn ident(&mut self) -> Result<String, QueryError> {
        match self.next() {
            Some(Token::Word(w)) if !is_reserved(&w) => Ok(w),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                Err(QueryError::malformed(format!(
                    "unexpected token: '{}'",
                    self.describe_here()
                )))
            }
        }
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::malformed("the query nests too deeply"));
        }
        Ok(())
    }

    fn query(&mut self) -> Result<Query, QueryError> {
        self.enter()?;
        self.expect_keyword("SELECT")?;
        let mut fields = vec![self.ident()?];
        while self.peek() == Some(&Token::Comma) {
            self.pos += 1;
            fields.push(self.ident()?);
        }
        self.expect_keyword("FROM")?;
        let object = self.ident()?;
        let condition = if self.keyword("WHERE") {
            Some(self.or()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.keyword("ORDER") {
            self.expect_keyword("BY")?;
            loop {
                let field = self.ident()?;
                let asc = if self.keyword("DESC") {
                    false
                } else {
                    self.keyword("ASC");
                    true
                };
                order.push((field, asc));
                if self.peek() == Some(&Token::Comma) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        let limit = if self.keyword("LIMIT") {
            match self.next() {
                Some(Token::Number(n)) if n >= 0.0 && n.fract() == 0.0 => Some(n as usize),
                _ => return Err(QueryError::malformed("LIMIT takes a whole number")),
            }
        } else {
            None
        };
        self.depth -= 1;
        Ok(Query {
            fields,
            object,
            condition,
            order,
            limit,
        })
    }

    fn or(&mut self) -> Result<Condition, QueryError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, QueryError> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            left = Condition::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, QueryError> {
        self.enter()?;
        let c = if self.keyword("NOT") {
            Condition::Not(Box::new(self.not()?))
        } else if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.or()?;
            if self.next() != Some(Token::Close) {
                return Err(QueryError::malformed("expecting ')'"));
            }
            inner
        } else {
            self.comparison()?
        };
        self.depth -= 1;
        Ok(c)
    }

    fn comparison(&mut self) -> Result<Condition, QueryError> {
        let field = self.ident()?;
        if self.keyword("LIKE") {
            return match self.next() {
                Some(Token::Text(p)) => Ok(Condition::Like(field, p)),
                _ => Err(QueryError::malformed("LIKE takes a quoted pattern")),
            };
        }
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            if self.next() != Some(Token::Open) {
                return Err(QueryError::malformed("expecting '(' after IN"));
            }
            if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("SELECT")) {
                let sub = self.query()?;
                if sub.fields.len() != 1 {
                    return Err(QueryError::malformed(
                        "a semi-join sub-query selects exactly one field",
                    ));
                }
                if self.next() != Some(Token::Close) {
                    return Err(QueryError::malformed("expecting ')'"));
                }
                return Ok(Condition::InQuery(field, negated, Box::new(sub)));
            }
            let mut values = vec![self.literal()?];
            loop {
                match self.next() {
                    Some(Token::Comma) => values.push(self.literal()?),
                    Some(Token::Close) => break,
                    _ => return Err(QueryError::malformed("expecting ',' or ')' in an IN list")),
                }
            }
            return Ok(Condition::In(field, negated, values));
        }
        if negated {
            return Err(QueryError::malformed("expecting 'IN' after 'NOT'"));
        }
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err(QueryError::malformed(format!(
                    "unexpected token: '{}'",
                    self.describe_here()
                )));
            }
        };
        Ok(Condition::Compare(field, op, self.literal()?))
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        match self.next() {
            Some(Token::Text(t)) => Ok(Literal::Text(t)),
            Some(Token::Number(n)) => Ok(Literal::Number(n)),
            Some(Token::DateTime(d)) => Ok(Literal::DateTime(d)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                Err(QueryError::malformed(format!(
                    "unexpected token: '{}'",
                    self.describe_here()
                )))
            }
        }
    }
}

fn is_reserved(w: &str) -> bool {
    [
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT", "ASC",
        "DESC", "NULL", "TRUE", "FALSE",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(w))
}

/// What a query runs against: objects, their fields and rows.
pub trait Tables {
    /// Canonical object name and its fields (canonical name, type), or `None` when the object
    /// does not exist or the user may not see it.
    fn schema(&self, object: &str) -> Result<(String, Vec<(String, FieldType)>), QueryError>;
    /// Every row of an object (canonical field names).
    fn rows(&self, object: &str) -> Vec<serde_json::Map<String, Value>>;
}

/// A checked query: canonical names resolved.
struct Bound<'a> {
    object: String,
    fields: &'a [(String, FieldType)],
}

impl Bound<'_> {
    fn field(&self, name: &str) -> Result<(String, FieldType), QueryError> {
        self.fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(name))
            .cloned()
            .ok_or_else(|| QueryError {
                code: "INVALID_FIELD",
                message: format!(
                    "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                    self.object
                ),
            })
    }
}

/// Runs a query: the selected fields of every matching row, ordered and limited.
///
/// # Errors
/// `INVALID_TYPE`, `INVALID_FIELD` and `MALFORMED_QUERY` as Salesforce reports them.
pub fn execute(
    q: &Query,
    tables: &dyn Tables,
) -> Result<(String, Vec<serde_json::Map<String, Value>>), QueryError> {
    let (object, fields) = tables.schema(&q.object)?;
    let bound = Bound {
        object: object.clone(),
        fields: &fields,
    };
    let selected: Vec<String> = q
        .fields
        .iter()
        .map(|f| bound.field(f).map(|(n, _)| n))
        .collect::<Result<_, _>>()?;
    let order: Vec<(String, bool)> = q
        .order
        .iter()
        .map(|(f, asc)| bound.field(f).map(|(n, _)| (n, *asc)))
        .collect::<Result<_, _>>()?;
    let condition = match &q.condition {
        Some(c) => Some(resolve(c, &bound, tables)?),
        None => None,
    };
    let mut rows: Vec<_> = tables
        .rows(&object)
        .into_iter()
        .filter(|r| condition.as_ref().is_none_or(|c| c.matches(r)))
        .collect();
    rows.sort_by(|a, b| {
        for (f, asc) in &order {
            let o = compare_values(a.get(f), b.get(f));
            if o != Ordering::Equal {
                return if *asc { o } else { o.reverse() };
            }
        }
        Ordering::Equal
    });
    if let Some(limit) = q.limit {
        rows.truncate(limit);
    }
    let projected = rows
        .into_iter()
        .map(|r| {
            selected
                .iter()
                .map(|f| (f.clone(), r.get(f).cloned().unwrap_or(Value::Null)))
                .collect()
        })
        .collect();
    Ok((object, projected))
}

/// A condition with field names resolved and sub-queries run.
enum Resolved {
    And(Box<Resolved>, Box<Resolved>),
    Or(Box<Resolved>, Box<Resolved>),
    Not(Box<Resolved>),
    Compare(String, FieldType, Op, Literal),
    In(String, FieldType, bool, Vec<Literal>),
    Like(String, String),
}

fn resolve(c: &Condition, b: &Bound<'_>, tables: &dyn Tables) -> Result<Resolved, QueryError> {
    Ok(match c {
        Condition::And(l, r) => Resolved::And(
            Box::new(resolve(l, b, tables)?),
            Box::new(resolve(r, b, tables)?),
        ),
        Condition::Or(l, r) => Resolved::Or(
            Box::new(resolve(l, b, tables)?),
            Box::new(resolve(r, b, tables)?),
        ),
        Condition::Not(i) => Resolved::Not(Box::new(resolve(i, b, tables)?)),
        Condition::Compare(f, op, lit) => {
            let (name, ty) = b.field(f)?;
            check_literal(&name, ty, lit)?;
            Resolved::Compare(name, ty, *op, lit.clone())
        }
        Condition::In(f, neg, lits) => {
            let (name, ty) = b.field(f)?;
            for lit in lits {
                check_literal(&name, ty, lit)?;
            }
            Resolved::In(name, ty, *neg, lits.clone())
        }
        Condition::InQuery(f, neg, sub) => {
            let (name, ty) = b.field(f)?;
            let (_, rows) = execute(sub, tables)?;
            let values = rows
                .iter()
                .filter_map(|r| r.values().next())
                .filter_map(|v| v.as_str().map(|s| Literal::Text(s.to_owned())))
                .collect();
            Resolved::In(name, ty, *neg, values)
        }
        Condition::Like(f, p) => {
            let (name, ty) = b.field(f)?;
            if ty != FieldType::Text {
                return Err(QueryError::malformed(format!(
                    "invalid operator on field: {name}; LIKE works on text fields"
                )));
            }
            Resolved::Like(name, p.clone())
        }
    })
}

fn check_literal(field: &str, ty: FieldType, lit: &Literal) -> Result<(), QueryError> {
    let ok = matches!(
        (ty, lit),
        (_, Literal::Null)
            | (FieldType::Id | FieldType::Text, Literal::Text(_))
            | (FieldType::Bool, Literal::Bool(_))
            | (FieldType::Int, Literal::Number(_))
            | (FieldType::DateTime, Literal::DateTime(_))
    );
    if ok {
        Ok(())
    } else {
        // Salesforce's own wording for a quoted datetime or an unquoted string.
        Err(QueryError {
            code: "INVALID_FIELD",
            message: format!(
                "value of filter criterion for field '{field}' must be of type {} and should not be enclosed in quotes",
                type_word(ty)
            ),
        })
    }
}

fn type_word(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Id => "id",
        FieldType::Text => "string",
        FieldType::Bool => "boolean",
        FieldType::Int => "double",
        FieldType::DateTime => "dateTime",
    }
}

impl Resolved {
    fn matches(&self, row: &serde_json::Map<String, Value>) -> bool {
        match self {
            Resolved::And(l, r) => l.matches(row) && r.matches(row),
            Resolved::Or(l, r) => l.matches(row) || r.matches(row),
            Resolved::Not(i) => !i.matches(row),
            Resolved::Compare(f, ty, op, lit) => {
                let o = compare_literal(row.get(f), *ty, lit);
                match (op, o) {
                    (Op::Eq, Some(o)) => o == Ordering::Equal,
                    (Op::Ne, Some(o)) => o != Ordering::Equal,
                    (Op::Lt, Some(o)) => o == Ordering::Less,
                    (Op::Le, Some(o)) => o != Ordering::Greater,
                    (Op::Gt, Some(o)) => o == Ordering::Greater,
                    (Op::Ge, Some(o)) => o != Ordering::Less,
                    // A comparison with null (either side) is true only for = null / != null.
                    (Op::Eq, None) => is_null(row.get(f)) && *lit == Literal::Null,
                    (Op::Ne, None) => is_null(row.get(f)) != (*lit == Literal::Null),
                    _ => false,
                }
            }
            Resolved::In(f, ty, neg, lits) => {
                let hit = lits
                    .iter()
                    .any(|l| compare_literal(row.get(f), *ty, l) == Some(Ordering::Equal));
                hit != *neg
            }
            Resolved::Like(f, p) => row
                .get(f)
                .and_then(Value::as_str)
                .is_some_and(|v| like(&v.to_lowercase(), &p.to_lowercase())),
        }
    }
}

fn is_null(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

/// Compares a row value with a literal; `None` when either is null.
fn compare_literal(v: Option<&Value>, ty: FieldType, lit: &Literal) -> Option<Ordering> {
    let v = v.filter(|v| !v.is_null())?;
    match (ty, lit) {
        (FieldType::Id, Literal::Text(t)) => {
            // 15- and 18-character ids name the same record.
            let a = v.as_str()?;
            let n = a.len().min(t.len()).min(15);
            Some(a.get(..n)?.cmp(t.get(..n)?))
        }
        // Text comparison in SOQL is case-insensitive.
        (FieldType::Text, Literal::Text(t)) => {
            Some(v.as_str()?.to_lowercase().cmp(&t.to_lowercase()))
        }
        (FieldType::Bool, Literal::Bool(b)) => Some(v.as_bool()?.cmp(b)),
        (FieldType::Int, Literal::Number(n)) => v.as_f64()?.partial_cmp(n),
        (FieldType::DateTime, Literal::DateTime(d)) => {
            Some(parse_datetime_literal(v.as_str()?)?.cmp(d))
        }
        _ => None,
    }
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    // Nulls sort first in ascending order, as Salesforce's default NULLS FIRST.
    match (a.filter(|v| !v.is_null()), b.filter(|v| !v.is_null())) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => match (a, b) {
            (Value::Number(x), Value::Number(y)) => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(Ordering::Equal),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            (Value::String(x), Value::String(y)) => {
                match (parse_datetime_literal(x), parse_datetime_literal(y)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                }
            }
            _ => Ordering::Equal,
        },
    }
}

/// SQL LIKE with `%` (any run) and `_` (one character), iterative so no pattern can recurse deep.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('%') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '_' || Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&'%') {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One;

    impl Tables for One {
        fn schema(&self, object: &str) -> Result<(String, Vec<(String, FieldType)>), QueryError> {
            if object.eq_ignore_ascii_case("Case") {
                Ok((
                    "Case".into(),
                    vec![
                        ("Id".into(), FieldType::Id),
                        ("Status".into(), FieldType::Text),
                        ("SystemModstamp".into(), FieldType::DateTime),
                    ],
                ))
            } else {
                Err(QueryError {
                    code: "INVALID_TYPE",
                    message: format!("sObject type '{object}' is not supported."),
                })
            }
        }
        fn rows(&self, _: &str) -> Vec<serde_json::Map<String, Value>> {
            let row = |id: &str, status: &str, ts: &str| {
                serde_json::json!({"Id": id, "Status": status, "SystemModstamp": ts})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            };
            vec![
                row("500A", "New", "2024-05-01T10:00:00.000+0000"),
                row("500B", "Closed", "2024-05-02T10:00:00.000+0000"),
                row("500C", "new", "2024-05-03T10:00:00.000+0000"),
            ]
        }
    }

    fn ids(soql: &str) -> Vec<String> {
        let q = parse(soql).unwrap_or_else(|e| panic!("{soql}: {e:?}"));
        execute(&q, &One)
            .unwrap_or_else(|e| panic!("{soql}: {e:?}"))
            .1
            .iter()
            .map(|r| r["Id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn where_order_and_limit_select_what_salesforce_would() {
        assert_eq!(
            ids("SELECT Id FROM Case WHERE Status = 'NEW' ORDER BY Id DESC"),
            ["500C", "500A"]
        );
        assert_eq!(
            ids(
                "select id from case where SystemModstamp >= 2024-05-02T10:00:00Z order by SystemModstamp limit 1"
            ),
            ["500B"]
        );
        assert_eq!(
            ids("SELECT Id FROM Case WHERE NOT (Status IN ('New') OR Id = '500C')"),
            ["500B"]
        );
        assert_eq!(
            ids("SELECT Id FROM Case WHERE Id IN (SELECT Id FROM Case WHERE Status LIKE 'clo%')"),
            ["500B"]
        );
    }

    #[test]
    fn bad_queries_fail_with_salesforce_error_codes() {
        let run = |s: &str| {
            parse(s)
                .and_then(|q| execute(&q, &One).map(|_| ()))
                .unwrap_err()
                .code
        };
        assert_eq!(run("SELECT Id FROM Case WHERE"), "MALFORMED_QUERY");
        assert_eq!(
            run("SELECT Id FROM Case WHERE Status = 'x"),
            "MALFORMED_QUERY"
        );
        assert_eq!(run("SELECT Nope FROM Case"), "INVALID_FIELD");
        assert_eq!(run("SELECT Id FROM Nope__c"), "INVALID_TYPE");
        assert_eq!(
            run("SELECT Id FROM Case WHERE SystemModstamp > '2024-01-01'"),
            "INVALID_FIELD"
        );
        let deep = format!(
            "SELECT Id FROM Case WHERE {}Id = 'a'{}",
            "(".repeat(40),
            ")".repeat(40)
        );
        assert_eq!(run(&deep), "MALFORMED_QUERY");
    }

    #[test]
    fn datetimes_round_trip_through_salesforce_formatting() {
        let t = parse_datetime_literal("2024-05-01T12:30:00.250+02:00")
            .unwrap_or_else(|| panic!("parses"));
        assert_eq!(format_datetime(t), "2024-05-01T10:30:00.250+0000");
        assert_eq!(parse_datetime_literal(&format_datetime(t)), Some(t));
    }

    #[test]
    fn like_handles_percent_and_underscore_without_recursion() {
        assert!(like("image/jpeg", "image/%"));
        assert!(like("abc", "a_c"));
        assert!(!like("abd", "a_c"));
        assert!(like(&"a".repeat(5000), &"%a".repeat(50)));
    }
}
