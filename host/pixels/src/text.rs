//! Personal data in a line of text (OCR output, or any string).
//!
//! Detectors, in the order they claim text (a later detector never reports text an earlier
//! one claimed, so a card number is not also a phone number):
//!
//! | kind | rule | confidence |
//! | --- | --- | --- |
//! | payment card | 12–19 digits, contiguous or in card-shaped groups, a known IIN range for that length, Luhn | 0.95 |
//! | IBAN | country code, length for that country, ISO 13616 mod-97 | 0.95 |
//! | US SSN | `AAA-GG-SSSS` (dashes or spaces), area not 000/666/9xx, group not 00, serial not 0000 | 0.8 |
//! | UK NINO | two prefix letters from the allowed sets, six digits, suffix A–D | 0.85 |
//! | DE Steuer-ID | 11 digits, ISO 7064 MOD 11,10 check digit, digit-repetition rule, a label within 40 characters before it (`Steuer`, `IdNr`, `TIN`, ...) | 0.9 |
//! | e-mail | `local@domain.tld`, alphabetic TLD of 2+ letters | 0.9 |
//! | phone | `+` and 8–15 digits (E.164), `00` international, NANP `(AAA) EEE-NNNN` with separators, or a national trunk `0` and 9–12 digits; dates are not phones | 0.7 |
//!
//! Digit runs that fail a checksum are never reported as cards or IBANs: the checksum is the
//! only way a card finding is made, which is what keeps card false positives at zero.

use proofpix_analysis::{RiskLevel, mask_email};

/// What a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextKind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A payment card number (Luhn-valid, known IIN).
    CardNumber,
    /// An IBAN (mod-97 valid).
    Iban,
    /// A US Social Security number.
    UsSsn,
    /// A UK National Insurance number.
    UkNino,
    /// A German tax identification number (Steuer-ID).
    DeTaxId,
}

impl TextKind {
    /// Every kind, in report order.
    pub const ALL: [TextKind; 7] = [
        Self::Email,
        Self::Phone,
        Self::CardNumber,
        Self::Iban,
        Self::UsSsn,
        Self::UkNino,
        Self::DeTaxId,
    ];

    /// The finding code (`text_pii.card_number`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Email => "text_pii.email",
            Self::Phone => "text_pii.phone",
            Self::CardNumber => "text_pii.card_number",
            Self::Iban => "text_pii.iban",
            Self::UsSsn => "text_pii.national_id.us_ssn",
            Self::UkNino => "text_pii.national_id.uk_nino",
            Self::DeTaxId => "text_pii.national_id.de_tax_id",
        }
    }

    /// Default severity: contact details medium; financial and national ids high.
    pub fn severity(self) -> RiskLevel {
        match self {
            Self::Email | Self::Phone => RiskLevel::Medium,
            _ => RiskLevel::High,
        }
    }
}

/// One match in a string.
#[derive(Debug, Clone, PartialEq)]
pub struct TextMatch {
    /// What it is.
    pub kind: TextKind,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
    /// The value normalised: digits and letters only (e-mail addresses lowercased).
    pub normalized: String,
    /// 0..=1.
    pub confidence: f32,
    /// What made it a match ("Luhn-valid Visa number").
    pub detail: String,
}

/// Find personal data in `text`.
pub fn detect(text: &str) -> Vec<TextMatch> {
    let s = Scan::new(text);
    let mut out: Vec<TextMatch> = Vec::new();
    let passes: [fn(&Scan<'_>, &mut Vec<TextMatch>); 7] =
        [cards, ibans, ssns, ninos, de_tax_ids, emails, phones];
    for pass in passes {
        let mut found = Vec::new();
        pass(&s, &mut found);
        for m in found {
            if !out.iter().any(|o| o.start < m.end && m.start < o.end) {
                out.push(m);
            }
        }
    }
    out.sort_by_key(|m| m.start);
    out
}

/// Mask a value for a report: keep what a reviewer needs to tell two apart, no more.
pub fn mask(kind: TextKind, raw: &str) -> String {
    match kind {
        TextKind::Email => mask_email(raw),
        TextKind::Phone | TextKind::DeTaxId => mask_alnum(raw, 0, 2),
        TextKind::CardNumber => {
            // Regrouped in fours whatever spacing OCR produced: "**** **** **** 1111".
            let digits: Vec<char> = raw.chars().filter(char::is_ascii_digit).collect();
            let grouped: Vec<String> = digits.chunks(4).map(|c| c.iter().collect()).collect();
            mask_alnum(&grouped.join(" "), 0, 4)
        }
        TextKind::UsSsn => mask_alnum(raw, 0, 4),
        TextKind::Iban => mask_alnum(raw, 2, 4),
        TextKind::UkNino => mask_alnum(raw, 0, 1),
    }
}

/// Replace letters and digits with `*`, except the first `head` and last `tail` of them.
pub fn mask_alnum(raw: &str, head: usize, tail: usize) -> String {
    let n = raw.chars().filter(|c| c.is_alphanumeric()).count();
    let mut i = 0usize;
    raw.chars()
        .map(|c| {
            if !c.is_alphanumeric() {
                return c;
            }
            let keep = i < head || i.saturating_add(tail) >= n;
            i = i.saturating_add(1);
            if keep && n > head.saturating_add(tail) {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// The text as characters with their byte offsets.
struct Scan<'a> {
    text: &'a str,
    chars: Vec<char>,
    offs: Vec<usize>,
}

impl<'a> Scan<'a> {
    fn new(text: &'a str) -> Self {
        let (offs, chars) = text.char_indices().unzip();
        Self { text, chars, offs }
    }
    fn len(&self) -> usize {
        self.chars.len()
    }
    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }
    /// Character before `i`, if any.
    fn before(&self, i: usize) -> Option<char> {
        i.checked_sub(1).and_then(|j| self.at(j))
    }
    fn byte(&self, i: usize) -> usize {
        self.offs.get(i).copied().unwrap_or(self.text.len())
    }
    fn slice(&self, i: usize, j: usize) -> &'a str {
        self.text.get(self.byte(i)..self.byte(j)).unwrap_or("")
    }
    fn alnum_at(&self, i: usize) -> bool {
        self.at(i).is_some_and(char::is_alphanumeric)
    }
    /// True when `i` starts a token: no letter or digit right before it.
    fn token_start(&self, i: usize) -> bool {
        !self.before(i).is_some_and(char::is_alphanumeric)
    }
    fn push(
        &self,
        out: &mut Vec<TextMatch>,
        kind: TextKind,
        (i, j): (usize, usize),
        norm: String,
        confidence: f32,
        detail: String,
    ) {
        out.push(TextMatch {
            kind,
            start: self.byte(i),
            end: self.byte(j),
            normalized: norm,
            confidence,
            detail,
        });
    }
}

fn is_digit(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_digit())
}

/// A run of digit groups joined by one separator from `seps`, starting at `i`.
/// Returns the groups (as digit strings), the end index and the separator used (if any).
fn digit_groups(s: &Scan<'_>, i: usize, seps: &[char]) -> (Vec<String>, usize, Option<char>) {
    let mut groups: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut sep: Option<char> = None;
    let mut j = i;
    while j < s.len() {
        let c = s.at(j);
        if is_digit(c) {
            if let Some(c) = c {
                cur.push(c);
            }
            j = j.saturating_add(1);
            if groups.len().saturating_add(cur.len()) > 64 {
                break;
            }
            continue;
        }
        let Some(c) = c else { break };
        let next_digit = is_digit(s.at(j.saturating_add(1)));
        if seps.contains(&c) && next_digit && !cur.is_empty() && sep.is_none_or(|p| p == c) {
            sep = Some(c);
            groups.push(std::mem::take(&mut cur));
            j = j.saturating_add(1);
            continue;
        }
        break;
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    (groups, j, sep)
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if k % 2 == 1 {
            v = v.saturating_mul(2);
            if v > 9 {
                v = v.saturating_sub(9);
            }
        }
        sum = sum.saturating_add(v);
    }
    sum.is_multiple_of(10)
}

fn prefix_num(d: &[u8], n: usize) -> u32 {
    d.iter().take(n).fold(0u32, |a, b| {
        a.saturating_mul(10).saturating_add(u32::from(*b))
    })
}

/// The card brand for a number of this length, when its IIN is in a known range.
pub fn card_brand(d: &[u8]) -> Option<&'static str> {
    let len = d.len();
    let p1 = prefix_num(d, 1);
    let p2 = prefix_num(d, 2);
    let p3 = prefix_num(d, 3);
    let p4 = prefix_num(d, 4);
    let p6 = prefix_num(d, 6);
    if p1 == 4 && matches!(len, 13 | 16 | 19) {
        return Some("Visa");
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16 {
        return Some("Mastercard");
    }
    if (p2 == 34 || p2 == 37) && len == 15 {
        return Some("American Express");
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6))
        && (16..=19).contains(&len)
    {
        return Some("Discover");
    }
    if (3528..=3589).contains(&p4) && (16..=19).contains(&len) {
        return Some("JCB");
    }
    if ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&len) {
        return Some("Diners Club");
    }
    if p2 == 62 && (16..=19).contains(&len) {
        return Some("UnionPay");
    }
    if (p2 == 50 || (56..=69).contains(&p2)) && (12..=19).contains(&len) {
        return Some("Maestro");
    }
    None
}

fn card_shaped(groups: &[usize]) -> bool {
    match groups {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        // OCR often drops the space between two groups of narrow digits ("1111 11111111"),
        // so a group of 8 or 12 counts as two or three groups of 4.
        [init @ .., last] => {
            init.iter().all(|g| *g % 4 == 0) && (1..=4).contains(last)
                || init.iter().all(|g| *g % 4 == 0) && *last % 4 == 0
        }
        [] => false,
    }
}

fn cards(s: &Scan<'_>, out: &mut Vec<TextMatch>) {
    let mut i = 0usize;
    while i < s.len() {
        // Not the continuation of a grouped code ("FR49 4793 ..." misread so that the IBAN
        // check fails must not leave its digit groups to the card detector).
        let continues = matches!(s.before(i), Some(' ' | '-'))
            && s.before(i.saturating_sub(1))
                .is_some_and(|c| c.is_ascii_digit());
        if !(is_digit(s.at(i)) && s.token_start(i)) || continues {
            i = i.saturating_add(1);
            continue;
        }
        let (groups, end, _) = digit_groups(s, i, &[' ', '-']);
        let lens: Vec<usize> = groups.iter().map(String::len).collect();
        // Whole run first, then leading groups (a card followed by another number).
        let mut found = false;
        for take in (1..=groups.len()).rev() {
            let Some(g) = groups.get(..take) else {
                continue;
            };
            let Some(l) = lens.get(..take) else { continue };
            let digits: Vec<u8> = g
                .iter()
                .flat_map(|x| x.bytes())
                .map(|b| b.saturating_sub(b'0'))
                .collect();
            if !(12..=19).contains(&digits.len()) || !card_shaped(l) {
                continue;
            }
            // A card followed by more digit groups: only the common 15/16-digit numbers, and
            // at most two short groups after them (expiry "12 27", a CVV).
            let rest = lens.get(take..).unwrap_or(&[]);
            if !rest.is_empty()
                && (!matches!(digits.len(), 15 | 16)
                    || rest.len() > 2
                    || rest.iter().any(|r| *r > 4))
            {
                continue;
            }
            // The match must end at a token boundary.
            let chars_used: usize = l
                .iter()
                .sum::<usize>()
                .saturating_add(take.saturating_sub(1));
            let j = i.saturating_add(chars_used);
            if s.alnum_at(j) {
                continue;
            }
            if let Some(brand) = card_brand(&digits)
                && luhn(&digits)
            {
                let norm: String = digits
                    .iter()
                    .map(|d| char::from(b'0'.saturating_add(*d)))
                    .collect();
                s.push(
                    out,
                    TextKind::CardNumber,
                    (i, j),
                    norm,
                    0.95,
                    format!("Luhn-valid {brand} number"),
                );
                i = j;
                found = true;
                break;
            }
        }
        if !found {
            i = end.max(i.saturating_add(1));
        }
    }
}

const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VG", 24),
    ("XK", 20),
];

/// ISO 13616 check: move the first four characters to the end, letters to 10..35, mod 97 == 1.
pub fn iban_valid(iban: &str) -> bool {
    let Some(expected) = iban
        .get(..2)
        .and_then(|cc| IBAN_LENGTHS.iter().find(|(c, _)| *c == cc))
        .map(|(_, n)| *n)
    else {
        return false;
    };
    if iban.len() != expected
        || !iban
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return false;
    }
    let (head, tail) = iban.split_at(4);
    let mut rem = 0u32;
    for b in tail.bytes().chain(head.bytes()) {
        let v = if b.is_ascii_digit() {
            u32::from(b.saturating_sub(b'0'))
        } else {
            u32::from(b.saturating_sub(b'A')).saturating_add(10)
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn check_digit(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_digit() || c == 'O')
}

fn ibans(s: &Scan<'_>, out: &mut Vec<TextMatch>) {
    let mut i = 0usize;
    while i.saturating_add(4usize) <= s.len() {
        let upper = |k: usize| s.at(k).is_some_and(|c| c.is_ascii_uppercase());
        if !(upper(i)
            && upper(i.saturating_add(1))
            && check_digit(s.at(i.saturating_add(2)))
            && check_digit(s.at(i.saturating_add(3)))
            && s.token_start(i))
        {
            i = i.saturating_add(1);
            continue;
        }
        let cc = s.slice(i, i.saturating_add(2));
        let Some(len) = IBAN_LENGTHS.iter().find(|(c, _)| *c == cc).map(|(_, n)| *n) else {
            i = i.saturating_add(1);
            continue;
        };
        let mut norm = String::new();
        let mut j = i;
        while j < s.len() && norm.len() < len {
            match s.at(j) {
                // OCR reads the check digits' 0 as O ("GBO7"); mod-97 guards the repair.
                Some('O') if (2..4).contains(&norm.len()) => norm.push('0'),
                Some(c) if c.is_ascii_uppercase() || c.is_ascii_digit() => norm.push(c),
                Some(' ') if s.alnum_at(j.saturating_add(1)) && !norm.is_empty() => {}
                _ => break,
            }
            j = j.saturating_add(1);
        }
        if norm.len() == len && !s.alnum_at(j) && iban_valid(&norm) {
            s.push(
                out,
                TextKind::Iban,
                (i, j),
                norm,
                0.95,
                "IBAN with a valid mod-97 checksum".to_owned(),
            );
            i = j;
        } else {
            i = i.saturating_add(1);
        }
    }
}

fn ssns(s: &Scan<'_>, out: &mut Vec<TextMatch>) {
    let mut i = 0usize;
    while i < s.len() {
        let standalone = s.token_start(i)
            && !(matches!(s.before(i), Some('-' | ' ' | '.' | '/'))
                && is_digit(s.before(i.saturating_sub(1))));
        if !(is_digit(s.at(i)) && standalone) {
            i = i.saturating_add(1);
            continue;
        }
        let (groups, end, sep) = digit_groups(s, i, &['-', ' ']);
        let lens: Vec<usize> = groups.iter().map(String::len).collect();
        let trailing =
            matches!(s.at(end), Some('-' | '.' | '/')) && is_digit(s.at(end.saturating_add(1)));
        if lens == [3, 2, 4] && sep.is_some() && !s.alnum_at(end) && !trailing {
            let area: u32 = groups.first().and_then(|g| g.parse().ok()).unwrap_or(0);
            let group: u32 = groups.get(1).and_then(|g| g.parse().ok()).unwrap_or(0);
            let serial: u32 = groups.get(2).and_then(|g| g.parse().ok()).unwrap_or(0);
            let norm = groups.concat();
            let known_fake = norm == "078051120" || norm == "219099999";
            if area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 && !known_fake {
                s.push(
                    out,
                    TextKind::UsSsn,
                    (i, end),
                    norm,
                    0.8,
                    "SSN-shaped, valid area, group and serial".to_owned(),
                );
            }
        }
        i = end.max(i.saturating_add(1));
    }
}

fn ninos(s: &Scan<'_>, out: &mut Vec<TextMatch>) {
    let mut i = 0usize;
    while i < s.len() {
        if !(s.at(i).is_some_and(|c| c.is_ascii_uppercase()) && s.token_start(i)) {
            i = i.saturating_add(1);
            continue;
        }
        // Letters and digits, allowing single spaces: "AB 12 34 56 C" or "AB123456C".
        let mut norm = String::new();
        let mut j = i;
        while j < s.len() && norm.len() < 9 {
            match s.at(j) {
                Some(c) if c.is_ascii_uppercase() || c.is_ascii_digit() => norm.push(c),
                Some(' ') if s.alnum_at(j.saturating_add(1)) && !norm.is_empty() => {}
                _ => break,
            }
            j = j.saturating_add(1);
        }
        let b = norm.as_bytes();
        let shape = b.len() == 9
            && b.first().is_some_and(u8::is_ascii_uppercase)
            && b.get(1).is_some_and(u8::is_ascii_uppercase)
            && b.get(2..8)
                .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && b.get(8).is_some_and(|c| (b'A'..=b'D').contains(c));
        if shape && !s.alnum_at(j) {
            let p0 = b.first().copied().unwrap_or(b'D');
            let p1 = b.get(1).copied().unwrap_or(b'D');
            let prefix = norm.get(..2).unwrap_or("");
            let ok = !b"DFIQUV".contains(&p0)
                && !b"DFIQUVO".contains(&p1)
                && !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&prefix);
            if ok {
                s.push(
                    out,
                    TextKind::UkNino,
                    (i, j),
                    norm,
                    0.85,
                    "National Insurance number: valid prefix and suffix".to_owned(),
                );
                i = j;
                continue;
            }
        }
        i = i.saturating_add(1);
    }
}

/// ISO 7064 MOD 11,10 check digit and the Steuer-ID repetition rule over 11 digits.
pub fn de_tax_id_valid(d: &[u8]) -> bool {
    if d.len() != 11 || d.first() == Some(&0) {
        return false;
    }
    let Some((check, body)) = d.split_last() else {
        return false;
    };
    let mut counts = [0u8; 10];
    for x in body {
        if let Some(c) = counts.get_mut(usize::from(*x)) {
            *c = c.saturating_add(1);
        }
    }
    let repeated: Vec<u8> = counts.iter().copied().filter(|c| *c > 1).collect();
    if !(repeated == [2] || repeated == [3]) {
        return false;
    }
    let mut product = 10u32;
    for x in body {
        let mut sum = (u32::from(*x) + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let mut c = 11u32.saturating_sub(product);
    if c == 10 {
        c = 0;
    }
    c == u32::from(*check)
}

const DE_TAX_LABELS: &[&str] = &[
    "steuer",
    "idnr",
    "id-nr",
    "identifikationsnummer",
    "tin",
    "tax id",
];

fn de_tax_ids(s: &Scan<'_>, out: &mut Vec<TextMatch>) {
    let mut i = 0usize;
    while i < s.len() {
        if !(is_digit(s.at(i)) && s.token_start(i)) {
            i = i.saturating_add(1);
            continue;
        }
        let (groups, end, _) = digit_groups(s, i, &[' ']);
        let lens: Vec<usize> = groups.iter().map(String::len).collect();
        let shaped = lens == [11] || lens == [2, 3, 3, 3];
        let digits: Vec<u8> = groups
            .concat()
            .bytes()
            .map(|b| b.saturating_sub(b'0'))
            .collect();
        if shaped && !s.alnum_at(end) && de_tax_id_valid(&digits) {
            let ctx = s.slice(i.saturating_sub(40), i).to_lowercase();
            if DE_TAX_LABELS.iter().any(|l| ctx.contains(l)) {
                s.push(
                    out,
                    TextKind::DeTaxId,
                    (i, end),
                    groups.concat(),
                    0.9,
                    "Steuer-ID with a valid check digit after a tax-id label".to_owned(),
                );
            }
        }
        i = end.max(i.saturating_add(1));
    }
}

fn emails(s: &Scan<'_>, out: &mut Vec<TextMatch>) {
    let local = |c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c);
    let dom = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    for k in 0..s.len() {
        if s.at(k) != Some('@') {
            continue;
        }
        let mut a = k;
        while a > 0 && s.before(a).is_some_and(local) {
            a = a.saturating_sub(1);
        }
        while a < k && matches!(s.at(a), Some('.' | '-' | '+')) {
            a = a.saturating_add(1);
        }
        let mut b = k.saturating_add(1);
        while s.at(b).is_some_and(dom) {
            b = b.saturating_add(1);
        }
        while b > k && matches!(s.before(b), Some('.' | '-')) {
            b = b.saturating_sub(1);
        }
        if a >= k || b <= k.saturating_add(1) {
            continue;
        }
        let domain = s.slice(k.saturating_add(1), b);
        let labels: Vec<&str> = domain.split('.').collect();
        let tld_ok = labels
            .last()
            .is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()));
        if labels.len() >= 2 && labels.iter().all(|l| !l.is_empty()) && tld_ok {
            let norm = s.slice(a, b).to_lowercase();
            s.push(
                out,
                TextKind::Email,
                (a, b),
                norm,
                0.9,
                "e-mail address".to_owned(),
            );
        }
    }
}

fn looks_like_date(lens: &[usize], sep: Option<char>) -> bool {
    matches!(sep, Some('-' | '.' | '/'))
        && matches!(lens, [4, 2, 2] | [2, 2, 4] | [1 | 2, 1 | 2, 2 | 4])
}

fn phones(s: &Scan<'_>, out: &mut Vec<TextMatch>) {
    let mut i = 0usize;
    while i < s.len() {
        let c = s.at(i);
        let plus = c == Some('+') && is_digit(s.at(i.saturating_add(1)));
        let paren = c == Some('(') && is_digit(s.at(i.saturating_add(1)));
        if !((plus || paren || is_digit(c)) && s.token_start(i)) {
            i = i.saturating_add(1);
            continue;
        }
        // Digits with single separators between them; "(555) 010-9999" keeps ") ".
        let mut digits = String::new();
        let mut lens: Vec<usize> = Vec::new();
        let mut run = 0usize;
        let mut seps: Vec<char> = Vec::new();
        let mut j = if plus || paren {
            i.saturating_add(1)
        } else {
            i
        };
        let mut last_digit_end = j;
        while j < s.len() && digits.len() <= 17 {
            match s.at(j) {
                Some(d) if d.is_ascii_digit() => {
                    digits.push(d);
                    run = run.saturating_add(1);
                    j = j.saturating_add(1);
                    last_digit_end = j;
                }
                Some(sep @ (' ' | '-' | '.' | '/' | '(' | ')')) => {
                    let mut k = j.saturating_add(1);
                    if sep == ')' && s.at(k) == Some(' ') {
                        k = k.saturating_add(1);
                    }
                    if !is_digit(s.at(k)) || run == 0 {
                        break;
                    }
                    lens.push(run);
                    run = 0;
                    seps.push(sep);
                    j = k;
                }
                _ => break,
            }
        }
        if run > 0 {
            lens.push(run);
        }
        let end = last_digit_end;
        let n = digits.len();
        let first_sep = seps.first().copied();
        let uniform = seps.iter().all(|x| Some(*x) == first_sep || *x == ')');
        let nanp_groups = if paren {
            lens == [3, 3, 4]
        } else {
            lens == [3, 3, 4] || lens == [1, 3, 3, 4]
        };
        let nanp_digits = digits
            .strip_prefix('1')
            .filter(|_| n == 11)
            .unwrap_or(&digits);
        let nanp = nanp_groups
            && nanp_digits.len() == 10
            && nanp_digits.starts_with(|c: char| ('2'..='9').contains(&c))
            && nanp_digits.get(3..4).is_some_and(|c| {
                c.as_bytes()
                    .first()
                    .is_some_and(|b| (b'2'..=b'9').contains(b))
            });
        let kind = if plus && (8..=15).contains(&n) && !digits.starts_with('0') {
            Some("international number (E.164)")
        } else if !plus && digits.starts_with("00") && (10..=17).contains(&n) && !paren {
            Some("international number (00 prefix)")
        } else if nanp && (paren || !seps.is_empty()) {
            Some("North American number")
        } else if !plus
            && !paren
            && digits.starts_with('0')
            && !digits.starts_with("00")
            && (9..=12).contains(&n)
            && uniform
            && lens.iter().all(|l| *l >= 2)
        {
            Some("national number with trunk prefix 0")
        } else {
            None
        };
        if let Some(kind) = kind
            && !looks_like_date(&lens, first_sep)
            && !s.alnum_at(end)
        {
            s.push(out, TextKind::Phone, (i, end), digits, 0.7, kind.to_owned());
            i = end;
        } else {
            i = end.max(i.saturating_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &str) -> Vec<(TextKind, String)> {
        detect(t)
            .into_iter()
            .map(|m| (m.kind, m.normalized))
            .collect()
    }

    #[test]
    fn card_numbers_need_luhn_and_a_known_iin() {
        assert_eq!(
            kinds("Card: 4111 1111 1111 1111 exp 12/27"),
            [(TextKind::CardNumber, "4111111111111111".to_owned())]
        );
        assert_eq!(
            kinds("amex 3782-822463-10005."),
            [(TextKind::CardNumber, "378282246310005".to_owned())]
        );
        assert_eq!(
            kinds("mc 5555555555554444"),
            [(TextKind::CardNumber, "5555555555554444".to_owned())]
        );
        // One digit off: Luhn fails, nothing reported (and not a phone either).
        assert!(kinds("Card: 4111 1111 1111 1112").is_empty());
        // Luhn-valid but no issuer starts with 1.
        assert!(kinds("order 1234567812345670").is_empty());
        // Part of a longer token.
        assert!(kinds("ID4111111111111111").is_empty());
        // The digit groups of a misread IBAN are not a card, even when they pass Luhn.
        assert_eq!(kinds("FR49 4793 6562 4297 2604 6192 387"), []);
        assert_eq!(kinds("4111 1111 1111 1111 12 27").len(), 1);
    }

    #[test]
    fn ibans_need_the_country_length_and_mod_97() {
        assert_eq!(
            kinds("IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX"),
            [(TextKind::Iban, "DE89370400440532013000".to_owned())]
        );
        assert_eq!(
            kinds("GB29NWBK60161331926819"),
            [(TextKind::Iban, "GB29NWBK60161331926819".to_owned())]
        );
        assert!(kinds("DE89 3704 0044 0532 0130 01").is_empty());
        assert_eq!(
            kinds("IBAN: GBO7 NWBK 8323 3335 9063 40"),
            [(TextKind::Iban, "GB07NWBK83233335906340".to_owned())]
        );
        assert!(iban_valid("NL91ABNA0417164300"));
        assert!(!iban_valid("NL91ABNA0417164301"));
    }

    #[test]
    fn national_ids_follow_their_rules() {
        assert_eq!(
            kinds("SSN 123-45-6789"),
            [(TextKind::UsSsn, "123456789".to_owned())]
        );
        assert!(kinds("SSN 666-45-6789").is_empty());
        assert!(kinds("SSN 900-45-6789").is_empty());
        assert!(kinds("SSN 123-00-6789").is_empty());
        assert_eq!(
            kinds("NI number: AB 12 34 56 C"),
            [(TextKind::UkNino, "AB123456C".to_owned())]
        );
        assert!(kinds("NI number: QQ 12 34 56 C").is_empty());
        assert!(kinds("NI number: AB 12 34 56 E").is_empty());
        // Steuer-ID 86095742719 is the BZSt's published example.
        assert_eq!(
            kinds("Steuer-ID: 86 095 742 719"),
            [(TextKind::DeTaxId, "86095742719".to_owned())]
        );
        assert!(kinds("Steuer-ID: 86 095 742 718").is_empty());
        assert!(
            kinds("Invoice 86095742719").is_empty(),
            "no label, no finding"
        );
    }

    #[test]
    fn emails_and_phones() {
        assert_eq!(
            kinds("write to Jane.Doe@Example.co.uk."),
            [(TextKind::Email, "jane.doe@example.co.uk".to_owned())]
        );
        assert!(kinds("user@localhost and @handle").is_empty());
        assert_eq!(
            kinds("Tel +44 20 7946 0958"),
            [(TextKind::Phone, "442079460958".to_owned())]
        );
        assert_eq!(
            kinds("call (555) 234-5678 now"),
            [(TextKind::Phone, "5552345678".to_owned())]
        );
        assert_eq!(
            kinds("030 12345678"),
            [(TextKind::Phone, "03012345678".to_owned())]
        );
        assert!(kinds("on 2023-01-15 at 10.30").is_empty());
        assert!(kinds("IMG_20230101 1234567").is_empty());
    }

    #[test]
    fn values_are_masked_to_their_tails() {
        assert_eq!(
            mask(TextKind::CardNumber, "4111 1111 1111 1111"),
            "**** **** **** 1111"
        );
        assert_eq!(
            mask(TextKind::Iban, "DE89 3704 0044 0532 0130 00"),
            "DE** **** **** **** **30 00"
        );
        assert_eq!(mask(TextKind::UsSsn, "123-45-6789"), "***-**-6789");
        assert_eq!(
            mask(TextKind::Phone, "+44 20 7946 0958"),
            "+** ** **** **58"
        );
        assert_eq!(
            mask(TextKind::Email, "jane@example.com"),
            "j***@e******.com"
        );
    }
}
