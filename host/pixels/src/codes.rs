//! QR codes: found and decoded with `rqrr`, payloads classified.
//!
//! How codes are searched (`rqrr` first, harder passes gated on finder-pattern candidates) is
//! described in [`mod@search`].
//!
//! Why `rqrr`: pure Rust (no C toolchain, builds for every target ProofPix ships), MIT or
//! Apache-2.0, small (one dependency beyond `image`-free code), and it decodes QR only, the
//! code that carries Wi-Fi credentials, contacts and payment requests. `rxing` (a ZXing port,
//! Apache-2.0) adds DataMatrix, PDF417 (boarding passes printed on paper), Aztec (mobile
//! boarding passes) and 1D codes; it is the candidate for those formats. Accuracy of `rqrr`
//! on generated codes is measured by `examples/pixel_eval.rs` (BENCHMARKS.md).

use image::GrayImage;
use proofpix_analysis::{RiskLevel, mask_name};

use crate::finding::BBox;
use crate::text::mask_alnum;

pub mod search;

pub use search::{
    MAX_REGIONS, MAX_UPSCALED_PIXELS, MIN_FINDERS, Pass, QrOutcome, QrSearch, search,
};

/// A decoded code.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    /// The payload as text (QR byte mode decoded as UTF-8, lossily).
    pub payload: String,
    /// Where, in analysis-image coordinates.
    pub bbox: BBox,
}

/// Most codes decoded per image (a sheet of stickers is still finite).
pub const MAX_CODES: usize = 64;

/// Find and decode QR codes with the pixel stage's search ([`QrSearch::default`]). Grids
/// that are found but do not decode are counted in the second value (a code too blurred or
/// damaged to read is still worth a note).
pub fn find_qr(img: &GrayImage) -> (Vec<Code>, usize) {
    let out = search(img, &QrSearch::default());
    (out.codes, out.undecoded)
}

/// Longest side of an image that gets the whole-image 2x pass of [`QrSearch::rqrr_2x`].
pub const UPSCALE_MAX_SIDE: u32 = 1600;

/// What a payload is, with its finding code, severity and masked value.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// `barcode.wifi`, `barcode.url`, ...
    pub code: &'static str,
    /// Default severity.
    pub severity: RiskLevel,
    /// The value for the report: masked unless `show`.
    pub value: String,
    /// What it carries.
    pub detail: String,
}

/// Split `KEY:value;KEY:value;;` (Wi-Fi and MECARD syntax) honouring `\;` escapes.
fn fields(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut esc = false;
    for c in body.chars() {
        if esc {
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == ';' {
            if let Some((k, v)) = cur.split_once(':') {
                out.push((k.trim().to_ascii_uppercase(), v.to_owned()));
            }
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    if let Some((k, v)) = cur.split_once(':') {
        out.push((k.trim().to_ascii_uppercase(), v.to_owned()));
    }
    out
}

fn field<'a>(f: &'a [(String, String)], key: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn stars(s: &str) -> String {
    "*".repeat(s.chars().count().clamp(1, 12))
}

/// Classify a decoded payload.
pub fn classify(payload: &str, show: bool) -> Payload {
    let p = payload.trim_start_matches('\u{feff}');
    let upper: String = p.chars().take(12).collect::<String>().to_ascii_uppercase();
    let sv = |s: &str, masked: String| if show { s.to_owned() } else { masked };

    if let Some(body) = upper.starts_with("WIFI:").then(|| p.get(5..).unwrap_or("")) {
        let f = fields(body);
        let ssid = field(&f, "S").unwrap_or("");
        let auth = field(&f, "T").unwrap_or("").to_ascii_uppercase();
        let pw = field(&f, "P").filter(|p| !p.is_empty());
        let value = match pw {
            Some(pw) => format!("network {ssid}, password {}", sv(pw, stars(pw))),
            None => format!("network {ssid}, no password"),
        };
        let auth = if auth.is_empty() {
            "unstated".to_owned()
        } else {
            auth
        };
        return match pw {
            Some(_) => Payload {
                code: "barcode.wifi",
                severity: RiskLevel::High,
                value,
                detail: format!("Wi-Fi credentials ({auth}) with the password in clear"),
            },
            None => Payload {
                code: "barcode.wifi",
                severity: RiskLevel::Medium,
                value,
                detail: "Wi-Fi network without a password".to_owned(),
            },
        };
    }
    if upper.starts_with("MECARD:") || upper.starts_with("BEGIN:VCARD") {
        let name = if upper.starts_with("MECARD:") {
            let f = fields(p.get(7..).unwrap_or(""));
            field(&f, "N").unwrap_or("").replace(',', " ")
        } else {
            p.lines()
                .find_map(|l| {
                    l.strip_prefix("FN:")
                        .or_else(|| l.strip_prefix("FN;CHARSET=UTF-8:"))
                })
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        return Payload {
            code: "barcode.contact",
            severity: RiskLevel::High,
            value: sv(&name, mask_name(&name)),
            detail: "contact card (name and contact details)".to_owned(),
        };
    }
    // IATA Bar Coded Boarding Pass: "M1" + passenger name (20) + e-ticket flag + PNR (7) ...
    if p.len() >= 60 && (p.starts_with("M1") || p.starts_with("M2")) && p.is_char_boundary(22) {
        let name = p.get(2..22).unwrap_or("").trim().replace('/', " ");
        let pnr = p.get(23..30).unwrap_or("").trim();
        let from = p.get(30..33).unwrap_or("");
        let to = p.get(33..36).unwrap_or("");
        return Payload {
            code: "barcode.boarding_pass",
            severity: RiskLevel::High,
            value: format!(
                "{} {from}-{to}, booking {}",
                sv(&name, mask_name(&name)),
                sv(pnr, mask_alnum(pnr, 0, 2))
            ),
            detail: "boarding pass (BCBP): passenger name and booking reference".to_owned(),
        };
    }
    if p.starts_with("BCD\n") || p.starts_with("BCD\r\n") {
        let lines: Vec<&str> = p.lines().map(str::trim).collect();
        let name = lines.get(5).copied().unwrap_or("");
        let iban = lines.get(6).copied().unwrap_or("");
        return Payload {
            code: "barcode.payment",
            severity: RiskLevel::High,
            value: format!(
                "to {} {}",
                sv(name, mask_name(name)),
                sv(iban, mask_alnum(iban, 2, 4))
            ),
            detail: "SEPA credit transfer (EPC QR): beneficiary name and IBAN".to_owned(),
        };
    }
    let lower = upper.to_ascii_lowercase();
    for (scheme, what, sev) in [
        ("bitcoin:", "bitcoin payment request", RiskLevel::Medium),
        ("ethereum:", "ethereum payment request", RiskLevel::Medium),
        (
            "upi://",
            "UPI payment request (payee address)",
            RiskLevel::High,
        ),
    ] {
        if lower.starts_with(scheme) {
            let rest = p.get(scheme.len()..).unwrap_or("");
            return Payload {
                code: "barcode.payment",
                severity: sev,
                value: format!("{scheme}{}", sv(rest, mask_alnum(rest, 4, 4))),
                detail: what.to_owned(),
            };
        }
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        // Host shown; path and query can carry tokens and are masked.
        let (scheme, rest) = p.split_at(p.find("://").map_or(0, |i| i.saturating_add(3)));
        let (host, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        let value = if tail.is_empty() || show {
            p.to_owned()
        } else {
            format!("{scheme}{host}/…")
        };
        return Payload {
            code: "barcode.url",
            severity: RiskLevel::Low,
            value,
            detail: format!("link to {host}"),
        };
    }
    if lower.starts_with("mailto:") || lower.starts_with("tel:") || lower.starts_with("sms") {
        return Payload {
            code: "barcode.contact",
            severity: RiskLevel::Medium,
            value: sv(p, mask_alnum(p, 4, 2)),
            detail: "contact link (e-mail, phone or SMS)".to_owned(),
        };
    }
    let n = p.chars().count();
    Payload {
        code: "barcode.text",
        severity: RiskLevel::Low,
        value: sv(p, format!("{n} characters")),
        detail: "text payload".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wifi_with_a_password_is_high_and_the_password_masked() {
        let p = classify(r"WIFI:T:WPA;S:Home Net;P:s3cr\;et;;", false);
        assert_eq!(p.code, "barcode.wifi");
        assert_eq!(p.severity, RiskLevel::High);
        assert_eq!(p.value, "network Home Net, password *******");
        assert!(!p.value.contains("s3cr"));
        let open = classify("WIFI:T:nopass;S:Cafe;;", false);
        assert_eq!(open.severity, RiskLevel::Medium);
    }

    #[test]
    fn contacts_boarding_passes_and_payments() {
        let c = classify(
            "MECARD:N:Doe,Jane;TEL:+15551234567;EMAIL:jane@example.com;;",
            false,
        );
        assert_eq!(
            (c.code, c.severity, c.value.as_str()),
            ("barcode.contact", RiskLevel::High, "D** J***")
        );
        let v = classify("BEGIN:VCARD\nVERSION:3.0\nFN:Jane Doe\nEND:VCARD", false);
        assert_eq!(v.value, "J*** D**");
        let b = classify(
            "M1DOE/JANE            EABC123 JFKLHRBA 0117 123Y014C0001 147>5180      0",
            false,
        );
        assert_eq!(b.code, "barcode.boarding_pass");
        assert!(b.value.starts_with("D** J*** JFK-LHR"), "{}", b.value);
        let e = classify(
            "BCD\n002\n1\nSCT\nCOBADEFFXXX\nJane Doe\nDE89370400440532013000\nEUR12.50",
            false,
        );
        assert_eq!(e.code, "barcode.payment");
        assert_eq!(e.value, "to J*** D** DE****************3000");
        assert_eq!(
            classify("bitcoin:1BoatSLRHtKNngkdXEeobR76b53LETtpyT?amount=1", false).code,
            "barcode.payment"
        );
        assert_eq!(
            classify("upi://pay?pa=jane@bank&pn=Jane", false).severity,
            RiskLevel::High
        );
    }

    #[test]
    fn urls_show_their_host_only() {
        let u = classify("https://example.com/reset?token=abc", false);
        assert_eq!(
            (u.code, u.value.as_str()),
            ("barcode.url", "https://example.com/…")
        );
        assert_eq!(classify("hello", false).code, "barcode.text");
    }
}
