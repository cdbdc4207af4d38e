//! XMP packets: an RDF-lite walk that flattens properties to ExifTool-style tag names.
//!
//! Threat model: XMP is attacker-written XML. The parser is quick-xml's pull parser with no
//! DTD processing: a `<!DOCTYPE` ends the packet with an error (billion laughs and external
//! entities need a DTD), and any entity other than the five predefined ones and character
//! references is refused. Nesting is capped at [`MAX_XML_DEPTH`], values at [`MAX_VALUE_CHARS`],
//! and the event count at [`MAX_EVENTS`]; the time budget is checked as events go.
//!
//! Naming: a property `ns:prop` becomes `Prop`; a structure field is appended (`xmpMM:History/
//! stEvt:action` → `HistoryAction`), with ExifTool's special cases for MWG and Microsoft face
//! regions (`RegionName`, `RegionPersonDisplayName`), IPTC creator contact info
//! (`CreatorWorkEmail`) and persons with details (`PersonInImageName`). The group is
//! `XMP-<prefix>` with the namespace's conventional prefix, whatever prefix the file used.
//!
//! Side facts: GPS coordinates (`exif:GPSLatitude` "DDD,MM.mmmmN" or decimal) become one GPS
//! item per schema; Google Motion Photo offsets and container items are noted for the
//! embedded-media check.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::ctx::Ctx;
use crate::model::Family;

/// Deepest element nesting accepted.
pub const MAX_XML_DEPTH: usize = 64;
/// Longest value kept, in characters.
const MAX_VALUE_CHARS: usize = 64 * 1024;
/// Most XML events per packet.
const MAX_EVENTS: u32 = 500_000;

const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";

/// Conventional prefixes by namespace URI (ExifTool's group names).
const PREFIXES: &[(&str, &str)] = &[
    ("http://purl.org/dc/elements/1.1/", "dc"),
    ("http://ns.adobe.com/xap/1.0/", "xmp"),
    ("http://ns.adobe.com/xap/1.0/mm/", "xmpMM"),
    ("http://ns.adobe.com/xap/1.0/rights/", "xmpRights"),
    ("http://ns.adobe.com/photoshop/1.0/", "photoshop"),
    ("http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/", "iptcCore"),
    ("http://iptc.org/std/Iptc4xmpExt/2008-02-29/", "iptcExt"),
    ("http://ns.adobe.com/exif/1.0/", "exif"),
    ("http://cipa.jp/exif/1.0/", "exifEX"),
    ("http://ns.adobe.com/tiff/1.0/", "tiff"),
    ("http://ns.adobe.com/exif/1.0/aux/", "aux"),
    (
        "http://www.metadataworkinggroup.com/schemas/regions/",
        "mwg-rs",
    ),
    ("http://ns.microsoft.com/photo/1.2/", "MP"),
    ("http://ns.adobe.com/pdf/1.3/", "pdf"),
    ("http://ns.adobe.com/camera-raw-settings/1.0/", "crs"),
    ("http://ns.google.com/photos/1.0/camera/", "GCamera"),
    ("http://ns.google.com/photos/1.0/container/", "GContainer"),
    ("http://ns.adobe.com/xmp/note/", "xmpNote"),
    ("http://ns.microsoft.com/photo/1.0/", "microsoft"),
    ("http://ns.useplus.org/ldf/xmp/1.0/", "plus"),
];

fn prefix_for(uri: &str, fallback: &str) -> String {
    PREFIXES
        .iter()
        .find(|(u, _)| *u == uri)
        .map_or_else(|| fallback.to_owned(), |(_, p)| (*p).to_owned())
}

fn ucfirst(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// ExifTool-style flattened name of a property path (prefix, local) list.
pub(crate) fn flatten(path: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut it = path.iter().peekable();
    let Some((p0, l0)) = it.next() else {
        return out;
    };
    match (p0.as_str(), l0.as_str()) {
        ("mwg-rs", "Regions") => {
            out.push_str("Region");
            if it.peek().is_some_and(|(_, l)| l == "RegionList") {
                it.next();
            }
        }
        ("MP", "RegionInfo") => {
            out.push_str("Region");
            if it.peek().is_some_and(|(_, l)| l == "Regions") {
                it.next();
            }
        }
        ("iptcCore", "CreatorContactInfo") => {
            out.push_str("Creator");
            if let Some((_, f)) = it.next() {
                out.push_str(match f.as_str() {
                    "CiEmailWork" => "WorkEmail",
                    "CiTelWork" => "WorkTelephone",
                    "CiUrlWork" => "WorkURL",
                    "CiAdrExtadr" => "Address",
                    "CiAdrCity" => "City",
                    "CiAdrPcode" => "PostalCode",
                    "CiAdrRegion" => "Region",
                    "CiAdrCtry" => "Country",
                    other => other,
                });
            } else {
                out.push_str("ContactInfo");
            }
        }
        // xmp:Thumbnails/rdf:Alt/rdf:li/xmpGImg:image is ExifTool's ThumbnailImage.
        ("xmp", "Thumbnails") => out.push_str("Thumbnail"),
        ("iptcExt", "PersonInImageWDetails") => {
            out.push_str("PersonInImage");
            if it.peek().is_some_and(|(_, l)| l == "PersonName") {
                it.next();
                out.push_str("Name");
            }
        }
        _ => out.push_str(&ucfirst(l0)),
    }
    for (_, l) in it {
        out.push_str(&ucfirst(l));
    }
    out
}

#[derive(Debug)]
enum Frame {
    Ignore,
    Node,
    /// A property element (`pushed`: it added a path component) or an `rdf:li` item.
    Prop {
        has_child: bool,
        text: String,
        pushed: bool,
    },
}

struct Walk {
    path: Vec<(String, String)>,
    group: String,
    gps: Vec<(String, String, String)>,
    last_semantic: Option<String>,
}

/// Parse one XMP packet; `abs` is the file offset of `data[0]` when known.
pub(crate) fn parse(ctx: &mut Ctx<'_>, data: &[u8], abs: Option<u64>) {
    if !ctx.enter() {
        return;
    }
    parse_inner(ctx, data, abs);
    ctx.leave();
}

fn attr_value(a: &quick_xml::events::attributes::Attribute<'_>) -> Option<String> {
    match a.unescape_value() {
        Ok(v) => Some(v.into_owned()),
        Err(_) => None,
    }
}

/// XMP may be UTF-16 or UTF-32 (either byte order); the XML parser wants UTF-8.
fn to_utf8(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let head = data.get(..64.min(data.len())).unwrap_or(&[]);
    let zeros_even = head.iter().step_by(2).filter(|b| **b == 0).count();
    let zeros_odd = head.iter().skip(1).step_by(2).filter(|b| **b == 0).count();
    let half = head.len() / 4;
    let unit = |le: bool, width: usize| -> std::borrow::Cow<'_, [u8]> {
        let mut s = String::with_capacity(data.len().checked_div(width).unwrap_or(0));
        if width == 2 {
            let units = data.chunks_exact(2).map(|c| {
                let (a, b) = (
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                );
                if le {
                    u16::from_le_bytes([a, b])
                } else {
                    u16::from_be_bytes([a, b])
                }
            });
            s.extend(char::decode_utf16(units).map(|r| r.unwrap_or('\u{fffd}')));
        } else {
            for c in data.chunks_exact(4) {
                let a: [u8; 4] = c.try_into().unwrap_or([0; 4]);
                let v = if le {
                    u32::from_le_bytes(a)
                } else {
                    u32::from_be_bytes(a)
                };
                s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            }
        }
        std::borrow::Cow::Owned(s.into_bytes())
    };
    if head.starts_with(&[0, 0, 0]) || head.starts_with(&[0, 0, 0xfe, 0xff]) {
        return unit(false, 4);
    }
    if head.get(1..4) == Some(&[0, 0, 0]) {
        return unit(true, 4);
    }
    if zeros_even > half && zeros_odd < half / 2 {
        return unit(false, 2);
    }
    if zeros_odd > half && zeros_even < half / 2 {
        return unit(true, 2);
    }
    std::borrow::Cow::Borrowed(data)
}

fn parse_inner(ctx: &mut Ctx<'_>, data: &[u8], abs: Option<u64>) {
    let data = to_utf8(data);
    let data: &[u8] = &data;
    // Skip junk before the first '<' (some writers pad with NULs or a BOM).
    let start = data.iter().position(|b| *b == b'<').unwrap_or(data.len());
    let body = data.get(start..).unwrap_or(&[]);
    let mut rd = NsReader::from_reader(body);
    rd.config_mut().check_end_names = false;
    let mut stack: Vec<Frame> = Vec::new();
    let mut w = Walk {
        path: Vec::new(),
        group: String::new(),
        gps: Vec::new(),
        last_semantic: None,
    };
    let mut events = 0u32;
    loop {
        events = events.saturating_add(1);
        if events > MAX_EVENTS || (events.is_multiple_of(4096) && !ctx.alive()) {
            ctx.error("XMP: packet too large; cut");
            break;
        }
        let (ns, ev) = match rd.read_resolved_event() {
            Ok((ns, ev)) => {
                let ns = match ns {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    _ => String::new(),
                };
                (ns, ev)
            }
            Err(e) => {
                ctx.error(format!("XMP: malformed XML ({e})"));
                break;
            }
        };
        match ev {
            Event::DocType(_) => {
                ctx.error("XMP: DOCTYPE refused (no DTDs or entities)");
                break;
            }
            Event::Start(e) | Event::Empty(e) if stack.len() >= MAX_XML_DEPTH => {
                let _ = e;
                ctx.error("XMP: nesting too deep");
                break;
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(ev, Event::Empty(_));
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let raw_prefix = e
                    .name()
                    .prefix()
                    .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
                    .unwrap_or_default();
                if let Some(Frame::Prop { has_child, .. }) = stack.last_mut() {
                    *has_child = true;
                }
                // Attributes: collected first (they borrow the reader's resolver).
                let mut attrs: Vec<(String, String, String, String)> = Vec::new();
                for a in e.attributes().with_checks(false).flatten() {
                    let key = a.key;
                    if key.as_ref().starts_with(b"xmlns") || key.as_ref().starts_with(b"xml:") {
                        continue;
                    }
                    let (ans, alocal) = rd.resolve_attribute(key);
                    let ans = match ans {
                        ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                        _ => String::new(),
                    };
                    let alocal = String::from_utf8_lossy(alocal.as_ref()).into_owned();
                    let apfx = key
                        .prefix()
                        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
                        .unwrap_or_default();
                    if let Some(v) = attr_value(&a) {
                        attrs.push((ans, apfx, alocal, v));
                    } else {
                        ctx.error("XMP: attribute with an undefined entity refused");
                    }
                }
                let frame = if ns == RDF {
                    match local.as_str() {
                        "Description" => Frame::Node,
                        "li" => Frame::Prop {
                            has_child: false,
                            text: String::new(),
                            pushed: false,
                        },
                        "RDF" | "Seq" | "Bag" | "Alt" => Frame::Ignore,
                        _ => Frame::Ignore,
                    }
                } else if ns == "adobe:ns:meta/" || ns.is_empty() && local == "xmpmeta" {
                    Frame::Ignore
                } else {
                    let pfx = prefix_for(&ns, &raw_prefix);
                    if w.path.is_empty() {
                        w.group = format!("XMP-{pfx}");
                    }
                    w.path.push((pfx, local.clone()));
                    Frame::Prop {
                        has_child: false,
                        text: String::new(),
                        pushed: true,
                    }
                };
                let is_prop = matches!(frame, Frame::Prop { pushed: true, .. });
                for (ans, apfx, alocal, v) in attrs {
                    if ans == RDF {
                        if alocal == "resource" && is_prop {
                            emit(ctx, &mut w, &v, abs);
                        }
                        continue;
                    }
                    let pfx = prefix_for(&ans, &apfx);
                    let top = w.path.is_empty();
                    if top {
                        w.group = format!("XMP-{pfx}");
                    }
                    w.path.push((pfx, alocal));
                    emit(ctx, &mut w, &v, abs);
                    w.path.pop();
                    if let Some(Frame::Prop { has_child, .. }) = stack.last_mut() {
                        *has_child = true;
                    }
                }
                if is_empty {
                    if is_prop {
                        w.path.pop();
                    }
                } else {
                    stack.push(frame);
                }
            }
            Event::Text(t) => {
                if let Some(Frame::Prop { text, .. }) = stack.last_mut() {
                    let s = t.decode().map_or_else(
                        |_| String::from_utf8_lossy(t.as_ref()).into_owned(),
                        std::borrow::Cow::into_owned,
                    );
                    push_capped(text, &s);
                }
            }
            Event::CData(t) => {
                if let Some(Frame::Prop { text, .. }) = stack.last_mut() {
                    push_capped(text, &String::from_utf8_lossy(t.as_ref()));
                }
            }
            Event::GeneralRef(r) => {
                let name: &[u8] = &r;
                let c = match name {
                    b"amp" => Some('&'),
                    b"lt" => Some('<'),
                    b"gt" => Some('>'),
                    b"quot" => Some('"'),
                    b"apos" => Some('\''),
                    _ => r.resolve_char_ref().ok().flatten(),
                };
                match c {
                    Some(c) => {
                        if let Some(Frame::Prop { text, .. }) = stack.last_mut() {
                            push_capped(text, c.encode_utf8(&mut [0u8; 4]));
                        }
                    }
                    None => ctx.error("XMP: undefined entity refused"),
                }
            }
            Event::End(_) => match stack.pop() {
                Some(Frame::Prop {
                    has_child,
                    text,
                    pushed,
                }) => {
                    if !has_child && !text.trim().is_empty() {
                        emit(ctx, &mut w, &text, abs);
                    }
                    if pushed {
                        w.path.pop();
                    }
                }
                Some(_) => {}
                None => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    finish_gps(ctx, &w, abs);
}

fn push_capped(dst: &mut String, s: &str) {
    if dst.len() < MAX_VALUE_CHARS {
        dst.extend(s.chars().take(MAX_VALUE_CHARS.saturating_sub(dst.len())));
    }
}

/// For an `rdf:li` text the path is the enclosing property; for attributes it is extended.
fn emit(ctx: &mut Ctx<'_>, w: &mut Walk, value: &str, abs: Option<u64>) {
    if w.path.is_empty() {
        return;
    }
    let name = flatten(&w.path);
    let tag = w
        .path
        .iter()
        .map(|(p, l)| format!("{p}:{l}"))
        .collect::<Vec<_>>()
        .join("/");
    let v = value.trim();
    match name.as_str() {
        "GPSLatitude"
        | "GPSLongitude"
        | "GPSDestLatitude"
        | "GPSDestLongitude"
        | "LocationCreatedGPSLatitude"
        | "LocationCreatedGPSLongitude"
        | "LocationShownGPSLatitude"
        | "LocationShownGPSLongitude" => {
            if w.gps.len() < 64 {
                w.gps.push((w.group.clone(), name.clone(), v.to_owned()));
            }
            return;
        }
        "MicroVideoOffset" | "MotionPhotoOffset" => {
            if let Ok(n) = v.parse::<u64>()
                && n > 0
            {
                ctx.facts.motion_photo_len = Some(n);
            }
        }
        "ThumbnailImage" => {
            // A base64 JPEG: report the image (its decoded size), never the text.
            let b64 = v.bytes().filter(|c| !c.is_ascii_whitespace()).count() as u64;
            let len = b64.saturating_mul(3) / 4;
            let group = w.group.clone();
            let img = crate::ctx::EmbeddedImage {
                offset: None,
                len,
                data: None,
                ..Default::default()
            };
            ctx.image(Family::Xmp, &group, &tag, &name, img);
            return;
        }
        "DirectoryItemSemantic" => w.last_semantic = Some(v.to_owned()),
        "DirectoryItemLength" => {
            if w.last_semantic.as_deref() == Some("MotionPhoto")
                && let Ok(n) = v.parse::<u64>()
                && n > 0
            {
                ctx.facts.motion_photo_len = Some(n);
            }
        }
        _ => {}
    }
    let group = w.group.clone();
    ctx.text(Family::Xmp, &group, &tag, &name, abs, v);
}

/// XMP GPS text: "DDD,MM.mmmmR", "DDD,MM,SSR" or signed decimal degrees.
pub(crate) fn parse_coord(s: &str) -> Option<(f64, f64)> {
    let s = s.trim();
    let last = s.chars().last()?;
    let (body, sign) = match last {
        'N' | 'E' | 'n' | 'e' => (s.get(..s.len().saturating_sub(1))?, 1.0),
        'S' | 'W' | 's' | 'w' => (s.get(..s.len().saturating_sub(1))?, -1.0),
        _ => (s, 1.0),
    };
    let parts: Vec<&str> = body.split(',').collect();
    let decimals = |p: &str| p.split('.').nth(1).map_or(0, str::len);
    let (deg, step) = match parts.as_slice() {
        [d] => {
            let v: f64 = d.trim().parse().ok()?;
            (
                v,
                10f64.powi(i32::try_from(decimals(d)).unwrap_or(0).saturating_neg()),
            )
        }
        [d, m] => {
            let dv: f64 = d.trim().parse().ok()?;
            let mv: f64 = m.trim().parse().ok()?;
            (
                dv + mv / 60.0,
                10f64.powi(i32::try_from(decimals(m)).unwrap_or(0).saturating_neg()) / 60.0,
            )
        }
        [d, m, sec] => {
            let dv: f64 = d.trim().parse().ok()?;
            let mv: f64 = m.trim().parse().ok()?;
            let sv: f64 = sec.trim().parse().ok()?;
            (
                dv + mv / 60.0 + sv / 3600.0,
                10f64.powi(i32::try_from(decimals(sec)).unwrap_or(0).saturating_neg()) / 3600.0,
            )
        }
        _ => return None,
    };
    deg.is_finite().then_some((deg * sign, step * 111_320.0))
}

fn finish_gps(ctx: &mut Ctx<'_>, w: &Walk, abs: Option<u64>) {
    // Pair each latitude with the longitude of the same group and prefix.
    for (group, name, v) in &w.gps {
        let Some(stem) = name.strip_suffix("Latitude") else {
            continue;
        };
        let Some((lat, rl)) = parse_coord(v) else {
            continue;
        };
        let lon_name = format!("{stem}Longitude");
        let lon = w
            .gps
            .iter()
            .find(|(g, n, _)| g == group && *n == lon_name)
            .and_then(|(_, _, lv)| parse_coord(lv));
        let (lon, ro) = lon.unwrap_or((0.0, rl));
        ctx.gps(Family::Xmp, group, name, name, abs, lat, lon, rl.max(ro));
    }
    // A lone longitude still reveals something.
    for (group, name, v) in &w.gps {
        if let Some(stem) = name.strip_suffix("Longitude") {
            let lat_name = format!("{stem}Latitude");
            if !w.gps.iter().any(|(g, n, _)| g == group && *n == lat_name)
                && let Some((lon, r)) = parse_coord(v)
            {
                ctx.gps(Family::Xmp, group, name, name, abs, 0.0, lon, r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use crate::source::Reader;

    fn names(xml: &str) -> Vec<(String, String)> {
        let src: Vec<u8> = Vec::new();
        let r = Reader::new(&src);
        let o = Options::default();
        let mut ctx = Ctx::new(&r, &o);
        parse(&mut ctx, xml.as_bytes(), None);
        ctx.items
            .iter()
            .map(|i| (i.group.clone(), i.name.clone()))
            .collect()
    }

    #[test]
    fn face_region_names_flatten_like_exiftool() {
        let xml = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
          <rdf:Description xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" xmlns:dc="http://purl.org/dc/elements/1.1/">
            <dc:creator><rdf:Seq><rdf:li>Ann Smith</rdf:li></rdf:Seq></dc:creator>
            <mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:RegionList><rdf:Bag>
              <rdf:li><rdf:Description mwg-rs:Name="Bob Jones" mwg-rs:Type="Face"/></rdf:li>
            </rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>
          </rdf:Description></rdf:RDF></x:xmpmeta>"#;
        let n = names(xml);
        assert!(n.contains(&("XMP-dc".into(), "Creator".into())), "{n:?}");
        assert!(
            n.contains(&("XMP-mwg-rs".into(), "RegionName".into())),
            "{n:?}"
        );
    }

    #[test]
    fn a_doctype_is_refused() {
        let xml = r#"<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/"/>"#;
        let src: Vec<u8> = Vec::new();
        let r = Reader::new(&src);
        let o = Options::default();
        let mut ctx = Ctx::new(&r, &o);
        parse(&mut ctx, xml.as_bytes(), None);
        assert!(ctx.errors.iter().any(|e| e.contains("DOCTYPE")));
    }

    #[test]
    fn xmp_coordinates_parse_with_their_precision() {
        let (d, r) = parse_coord("54,59.38N").unwrap_or_default();
        assert!((d - 54.989_666).abs() < 1e-5);
        assert!(r < 20.0, "{r}");
        assert!(parse_coord("-1.9141").is_some_and(|(d, _)| d < 0.0));
    }
}
