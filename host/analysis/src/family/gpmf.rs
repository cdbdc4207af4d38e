//! GoPro's GPMF (GoPro Metadata Format, <https://github.com/gopro/gpmf-parser>): which of its
//! records are findings, read from any of the three places a GoPro file carries them.
//!
//! | where | ExifTool table | group of the findings |
//! |---|---|---|
//! | JPEG APP6 starting `GoPro\0` ([`crate::container::jpeg`]) | `GoPro::GPMF` | `GoPro` |
//! | MP4 `moov/udta/GPMF` box ([`crate::container::qt`]) | `GoPro::GPMF` (UserData `GPMF`) | `GoPro` |
//! | MP4 timed metadata track, sample entry `gpmd` ([`crate::container::timed`]) | `GoPro::GPMF`, read by ExifTool only with `-ee` | `Track1`, `Track2`... (ExifTool's `-ee -G1`) |
//!
//! A GPMF list is a run of KLV records, all big-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | key, a FourCC (`DEVC`, `STRM`, `GPS5`...); four zero bytes end the list |
//! | 4 | type: 0 a nested list, else a format char (`b B c s S l L f d j J q Q F G U ?`) |
//! | 5 | structure size: bytes of one sample |
//! | 6..8 | repeat: the number of samples |
//! | 8.. | size × repeat bytes, padded to a multiple of 4 |
//!
//! `SCAL` (in the same list, usually a `STRM`) divides the values of the stream's samples, one
//! divisor per field or one for all; `TYPE` gives the fields of a `?` (complex) structure,
//! with `[n]` repeating a field (`f[8]L`). The records read:
//!
//! | key | name | category | sample fields |
//! |---|---|---|---|
//! | `CASN` | `CameraSerialNumber` | serial | text |
//! | `MINF` | `Model` | device | text |
//! | `MUID` | `MediaUniqueID` | unique-id | numbers, as ExifTool prints them |
//! | `GPS5` | `GPSLatitude`/`GPSLongitude` | gps | `lllll`: latitude, longitude, altitude, 2D and 3D speed |
//! | `GPS9` | `GPSLatitude`/`GPSLongitude` | gps | `lllllllSS` (HERO11 and later): latitude, longitude first |
//! | `GLPI` | `GPSLatitude`/`GPSLongitude` | gps | `LllllsssS` (Karma): time, then latitude, longitude |
//! | `GPRI` | `GPSLatitudeRaw`/`GPSLongitudeRaw` | gps | `JlllSSSSBB` (Karma): time, then latitude, longitude |
//!
//! The fix is the first sample whose coordinates are not both zero (a camera without a lock
//! writes zeros). ExifTool 12.57 scales only the last record of a list; the specification
//! scales the stream, which is what is done here (the GPS record is the last of its stream in
//! every GoPro file we know of, so the two agree).
//!
//! Threat model: every record comes from the file. A record is read only inside its list
//! (its size × repeat checked against what is left, so a lying repeat count ends the list with
//! an error and keeps what was read before it); nesting goes through [`Ctx::enter`] (the
//! specification's own limit is 16 levels, as is ours); at most [`MAX_RECORDS`] records per
//! reading, [`MAX_SAMPLES`] samples per GPS record, [`MAX_FIELDS`] fields per `TYPE` and
//! [`MAX_SCALES`] divisors per `SCAL`, so a huge repeat count costs nothing. A zero or
//! non-finite divisor and coordinates out of range are errors, never a finding.
//!
//! Not done: the other sensor streams (accelerometer, gyroscope, faces: `FACE` holds boxes,
//! not names) and `LINF` (ExifTool does not name it; GoPro writes lens and sensor ids in it).

use crate::bytes::be16;
use crate::ctx::Ctx;
use crate::family::tiff;
use crate::model::Family;

/// Most records read in one reading (one APP6 segment, box or sample): a 1 MiB sample holds at
/// most 131,072 empty records; real samples hold a few hundred.
const MAX_RECORDS: u32 = 65_536;
/// Most samples of one GPS record looked at for a fix (a GPS5 record holds 18 a second).
const MAX_SAMPLES: usize = 64;
/// Most fields of an expanded `TYPE` (GoPro's widest, `ESCS`, has 30).
const MAX_FIELDS: usize = 256;
/// Most divisors kept from a `SCAL` record.
const MAX_SCALES: usize = 64;

/// GPS records: key, index of the latitude and longitude fields in a sample, ExifTool's name
/// of the latitude (the finding holds the pair).
const GPS_RECORDS: &[(&[u8; 4], usize, usize, &str)] = &[
    (b"GPS5", 0, 1, "GPSLatitude"),
    (b"GPS9", 0, 1, "GPSLatitude"),
    (b"GLPI", 1, 2, "GPSLatitude"),
    (b"GPRI", 1, 2, "GPSLatitudeRaw"),
];

/// Text and number records kept as findings (ExifTool's `GoPro::GPMF` names); the category
/// comes from the name, as everywhere ([`crate::classify`]).
const TAG_RECORDS: &[(&[u8; 4], &str)] = &[
    (b"CASN", "CameraSerialNumber"),
    (b"MINF", "Model"),
    (b"MUID", "MediaUniqueID"),
];

/// One reading of GPMF data: where its findings go and what it found.
#[derive(Debug)]
pub(crate) struct Gpmf<'g> {
    group: &'g str,
    /// Report the device records (serial, model, media id) too, not only GPS: false for the
    /// later samples of a timed track, which repeat what the first one said.
    all: bool,
    records: u32,
    /// Whether a GPS fix was reported.
    pub gps: bool,
}

/// The `SCAL` and `TYPE` in force in one list.
#[derive(Debug, Default)]
struct Scope {
    scal: Vec<f64>,
    typ: Vec<u8>,
}

impl<'g> Gpmf<'g> {
    /// A reading whose findings carry ExifTool group `group`; `all`: the device records too.
    pub(crate) fn new(group: &'g str, all: bool) -> Self {
        Self {
            group,
            all,
            records: 0,
            gps: false,
        }
    }

    /// Read the GPMF list `d`, which starts at absolute offset `abs` when known.
    pub(crate) fn read(&mut self, ctx: &mut Ctx<'_>, d: &[u8], abs: Option<u64>) {
        if !ctx.enter() {
            return;
        }
        let mut sc = Scope::default();
        let mut pos = 0usize;
        while pos.saturating_add(8) <= d.len() && ctx.alive() {
            self.records = self.records.saturating_add(1);
            if self.records > MAX_RECORDS {
                ctx.error("GoPro GPMF: too many records; the rest skipped");
                break;
            }
            let key: [u8; 4] = d
                .get(pos..pos.saturating_add(4))
                .and_then(|k| k.try_into().ok())
                .unwrap_or([0; 4]);
            if key == [0; 4] {
                break;
            }
            let typ = d.get(pos.saturating_add(4)).copied().unwrap_or(0);
            let len = usize::from(d.get(pos.saturating_add(5)).copied().unwrap_or(0));
            let count = usize::from(be16(d, pos.saturating_add(6)).unwrap_or(0));
            let size = len.saturating_mul(count);
            let at = pos.saturating_add(8);
            let Some(v) = d.get(at..at.saturating_add(size)) else {
                ctx.error(format!(
                    "GoPro GPMF: record '{}' runs past its list",
                    fourcc(&key)
                ));
                break;
            };
            let vabs = abs.and_then(|a| a.checked_add(at as u64));
            if typ == 0 {
                self.read(ctx, v, vabs);
            } else if &key == b"SCAL" {
                sc.scal = numbers(v, typ, MAX_SCALES);
            } else if &key == b"TYPE" {
                sc.typ = expand_type(v);
            } else if let Some(&(_, la, lo, name)) = GPS_RECORDS.iter().find(|r| *r.0 == key) {
                if !self.gps {
                    self.fix(ctx, &sc, &key, (typ, len), v, vabs, (la, lo), name);
                }
            } else if let Some((_, name)) = TAG_RECORDS.iter().find(|r| *r.0 == key)
                && self.all
            {
                let value = if typ == b'c' {
                    tiff::ascii(v)
                } else {
                    numbers(v, typ, MAX_FIELDS)
                        .iter()
                        .map(|x| number_text(*x))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                ctx.text(
                    Family::MakerNote,
                    self.group,
                    &fourcc(&key),
                    name,
                    vabs,
                    &value,
                );
            }
            pos = at.saturating_add(size.saturating_add(3) & !3);
        }
        ctx.leave();
    }

    /// The first sample of GPS record `key` with a fix, scaled by the list's `SCAL`.
    #[allow(clippy::too_many_arguments)]
    fn fix(
        &mut self,
        ctx: &mut Ctx<'_>,
        sc: &Scope,
        key: &[u8; 4],
        (typ, len): (u8, usize),
        v: &[u8],
        abs: Option<u64>,
        (la, lo): (usize, usize),
        name: &str,
    ) {
        let fields: Vec<u8> = if typ == b'?' {
            sc.typ.clone()
        } else {
            let n = width(typ).map_or(0, |w| len.checked_div(w).unwrap_or(0));
            vec![typ; n.min(MAX_FIELDS)]
        };
        if fields.len() <= la.max(lo) {
            ctx.error(format!(
                "GoPro GPMF: '{}' samples hold no coordinates",
                fourcc(key)
            ));
            return;
        }
        let div = |i: usize| match sc.scal.as_slice() {
            [] => 1.0,
            s => s
                .get(i.checked_rem(s.len()).unwrap_or(0))
                .copied()
                .unwrap_or(1.0),
        };
        let (dla, dlo) = (div(la), div(lo));
        if dla == 0.0 || dlo == 0.0 || !dla.is_finite() || !dlo.is_finite() {
            ctx.error(format!("GoPro GPMF: '{}' has a zero scale", fourcc(key)));
            return;
        }
        for (i, sample) in v.chunks_exact(len.max(1)).take(MAX_SAMPLES).enumerate() {
            let f = decode(sample, &fields, la.max(lo).saturating_add(1));
            let (Some(y), Some(x)) = (f.get(la), f.get(lo)) else {
                ctx.error(format!(
                    "GoPro GPMF: '{}' sample shorter than its TYPE",
                    fourcc(key)
                ));
                return;
            };
            let (lat, lon) = (y / dla, x / dlo);
            if !(lat.is_finite() && lon.is_finite()) || (lat == 0.0 && lon == 0.0) {
                continue;
            }
            if lat.abs() > 90.0 || lon.abs() > 180.0 {
                ctx.error(format!(
                    "GoPro GPMF: '{}' coordinates out of range",
                    fourcc(key)
                ));
                return;
            }
            let at = abs.and_then(|a| a.checked_add((i.saturating_mul(len)) as u64));
            ctx.gps(
                Family::MakerNote,
                self.group,
                &fourcc(key),
                name,
                at,
                lat,
                lon,
                1.0,
            );
            self.gps = true;
            return;
        }
    }
}

fn fourcc(key: &[u8; 4]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Bytes of one value of format char `c` (`None`: not a number format).
fn width(c: u8) -> Option<usize> {
    Some(match c {
        b'b' | b'B' | b'c' => 1,
        b's' | b'S' => 2,
        b'l' | b'L' | b'f' | b'q' | b'F' => 4,
        b'd' | b'j' | b'J' | b'Q' => 8,
        b'G' | b'U' => 16,
        _ => return None,
    })
}

/// One value of format char `c` at the start of `b` (NaN for the non-numbers: `F`, `G`, `U`).
fn value(c: u8, b: &[u8]) -> Option<f64> {
    let a = |n: usize| b.get(..n);
    let arr4 = || a(4).and_then(|x| <[u8; 4]>::try_from(x).ok());
    let arr8 = || a(8).and_then(|x| <[u8; 8]>::try_from(x).ok());
    let arr2 = || a(2).and_then(|x| <[u8; 2]>::try_from(x).ok());
    Some(match c {
        b'b' => f64::from(i8::from_be_bytes([*b.first()?])),
        b'B' | b'c' => f64::from(*b.first()?),
        b's' => f64::from(i16::from_be_bytes(arr2()?)),
        b'S' => f64::from(u16::from_be_bytes(arr2()?)),
        b'l' => f64::from(i32::from_be_bytes(arr4()?)),
        b'L' => f64::from(u32::from_be_bytes(arr4()?)),
        b'f' => f64::from(f32::from_be_bytes(arr4()?)),
        b'd' => f64::from_be_bytes(arr8()?),
        // 64-bit integers and 32.32 fixed point lose precision past 2^53; no coordinate does.
        #[allow(clippy::cast_precision_loss)]
        b'j' => i64::from_be_bytes(arr8()?) as f64,
        #[allow(clippy::cast_precision_loss)]
        b'J' => u64::from_be_bytes(arr8()?) as f64,
        b'q' => f64::from(i32::from_be_bytes(arr4()?)) / 65_536.0,
        #[allow(clippy::cast_precision_loss)]
        b'Q' => i64::from_be_bytes(arr8()?) as f64 / 4_294_967_296.0,
        b'F' | b'G' | b'U' => {
            a(width(c)?)?;
            f64::NAN
        }
        _ => return None,
    })
}

/// The first `want` fields of one sample laid out as `fields`; fewer when the sample ends
/// first or a field's format is unknown.
fn decode(sample: &[u8], fields: &[u8], want: usize) -> Vec<f64> {
    let mut out = Vec::new();
    let mut p = 0usize;
    for &c in fields.iter().take(want) {
        let (Some(w), Some(x)) = (width(c), sample.get(p..).and_then(|b| value(c, b))) else {
            break;
        };
        out.push(x);
        p = p.saturating_add(w);
    }
    out
}

/// Every value of a record of scalar format `typ`, at most `cap`.
fn numbers(v: &[u8], typ: u8, cap: usize) -> Vec<f64> {
    let Some(w) = width(typ) else {
        return Vec::new();
    };
    v.chunks_exact(w)
        .take(cap)
        .filter_map(|c| value(typ, c))
        .collect()
}

/// A number as ExifTool prints an integer field (`1226518844`), else in Rust's shortest form.
fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// A `TYPE` string with its `[n]` repeats expanded (`f[3]L` → `fffL`), at most [`MAX_FIELDS`]
/// fields; it stops at a NUL or anything that is not a format char or a well-formed repeat.
fn expand_type(v: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0usize;
    while let Some(&c) = v.get(i) {
        if out.len() >= MAX_FIELDS {
            break;
        }
        i = i.saturating_add(1);
        if c == b'[' {
            let mut n = 0usize;
            while let Some(d) = v.get(i).filter(|d| d.is_ascii_digit()) {
                n = n
                    .saturating_mul(10)
                    .saturating_add(usize::from(d.saturating_sub(b'0')));
                i = i.saturating_add(1);
            }
            let Some(last) = out.last().copied() else {
                break;
            };
            if v.get(i) != Some(&b']') {
                break;
            }
            i = i.saturating_add(1);
            let more = n
                .saturating_sub(1)
                .min(MAX_FIELDS.saturating_sub(out.len()));
            out.extend(std::iter::repeat_n(last, more));
        } else if width(c).is_some() {
            out.push(c);
        } else {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// The GPS records' field indexes are the ones ExifTool's tables give, where the generated
    /// data lists them (GPS5, GLPI; GPRI's `...Raw` names and GPS9 are not in it).
    #[test]
    fn gps_field_indexes_agree_with_the_generated_data() {
        for (table, key) in [("GoPro::GPS5", b"GPS5"), ("GoPro::GLPI", b"GLPI")] {
            let rows = crate::tagdata::rows(table);
            let idx = |n: &str| {
                rows.iter()
                    .find(|(_, t)| t.name == n)
                    .map(|(i, _)| *i as usize)
            };
            let r = GPS_RECORDS.iter().find(|r| r.0 == key).unwrap();
            assert_eq!(idx("GPSLatitude"), Some(r.1), "{table}");
            assert_eq!(idx("GPSLongitude"), Some(r.2), "{table}");
        }
        let casn = crate::tagdata::rows("GoPro::GPMF");
        assert!(
            casn.is_empty(),
            "string ids are not indexed; CASN is named here"
        );
    }

    /// `TYPE` repeats expand; a malformed repeat or an unknown char stops the expansion, and a
    /// huge repeat is capped.
    #[test]
    fn type_strings_expand_their_repeats_within_the_cap() {
        assert_eq!(expand_type(b"f[3]L"), b"fffL");
        assert_eq!(expand_type(b"lllllllSS\0"), b"lllllllSS");
        assert_eq!(expand_type(b"[4]l"), b"");
        assert_eq!(expand_type(b"l[2"), b"l");
        assert_eq!(expand_type(b"lZl"), b"l");
        assert_eq!(expand_type(b"l[99999999999999999999999]").len(), MAX_FIELDS);
    }

    /// Every format char decodes from its big-endian bytes; a short buffer is no value.
    #[test]
    fn values_decode_by_format_char() {
        assert_eq!(value(b'l', &(-5i32).to_be_bytes()), Some(-5.0));
        assert_eq!(value(b'S', &[1, 0]), Some(256.0));
        assert_eq!(value(b'q', &0x0001_8000i32.to_be_bytes()), Some(1.5));
        assert_eq!(value(b'd', &2.5f64.to_be_bytes()), Some(2.5));
        assert_eq!(value(b'l', &[0, 0, 1]), None);
        assert!(value(b'U', &[0; 16]).unwrap().is_nan());
        assert_eq!(value(b'Z', &[0; 16]), None);
        assert_eq!(number_text(1_226_518_844.0), "1226518844");
        assert_eq!(number_text(0.5), "0.5");
    }
}
