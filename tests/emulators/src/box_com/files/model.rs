//! The emulated enterprise's content: folders, files with versions and SHA-1s, metadata
//! templates and instances, and the `changes` event stream every change is appended to.
//!
//! Ids are numeric strings, as Box's are (folder `0` is "All Files", the root). A file's `sha1`
//! is the real SHA-1 of its bytes, and a new upload gets a new `file_version.id`; `etag` and
//! `sequence_id` count the item's changes. Stream positions are large integers above 2^53 so a
//! client that parses them as floating point loses events (a known Box client bug).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub use crate::microsoft::graph::Expected;

/// The first stream position; one event moves it by [`POSITION_STEP`].
pub const POSITION_BASE: u64 = 12_000_000_000_000_000;
/// Stream positions advance by this much per event.
pub const POSITION_STEP: u64 = 7;
/// Id of the Trash pseudo-folder in a trashed item's `path_collection`.
pub const TRASH_ID: &str = "1";

/// A file to seed.
#[derive(Clone, Debug)]
pub struct FileSpec {
    /// Path below "All Files", folders separated by `/` (created as needed).
    pub path: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// What the bytes carry.
    pub expect: Expected,
}

impl FileSpec {
    /// A file at `path` with `content`.
    pub fn new(path: &str, content: Vec<u8>, expect: Expected) -> Self {
        FileSpec {
            path: path.to_owned(),
            content,
            expect,
        }
    }
}

/// Everything in the enterprise at start.
#[derive(Clone, Debug, Default)]
pub struct Population {
    /// Files, in creation order.
    pub files: Vec<FileSpec>,
    /// Empty folders to create as well.
    pub folders: Vec<String>,
}

/// A metadata template field type (Box: `string`, `float`, `date`, `enum`, `multiSelect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// Text.
    String,
    /// A number.
    Float,
    /// An RFC 3339 timestamp.
    Date,
    /// One of the options.
    Enum(Vec<String>),
}

impl FieldType {
    fn name(&self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Float => "float",
            FieldType::Date => "date",
            FieldType::Enum(_) => "enum",
        }
    }

    /// Whether `v` is a valid value of this type.
    pub fn accepts(&self, v: &Value) -> bool {
        match self {
            FieldType::String => v.is_string(),
            FieldType::Float => v.is_number(),
            FieldType::Date => v.as_str().is_some_and(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .is_ok()
            }),
            FieldType::Enum(options) => v.as_str().is_some_and(|s| options.iter().any(|o| o == s)),
        }
    }
}

/// A metadata template field.
#[derive(Clone, Debug)]
pub struct TemplateField {
    /// Key used in instances.
    pub key: String,
    /// Shown name.
    pub display_name: String,
    /// Type.
    pub kind: FieldType,
}

/// A metadata template of the enterprise.
#[derive(Clone, Debug)]
pub struct Template {
    /// `templateKey`.
    pub key: String,
    /// `displayName`.
    pub display_name: String,
    /// Fields.
    pub fields: Vec<TemplateField>,
}

impl Template {
    /// The template ProofPix's setup guide asks for: `proofpixPrivacy` with `risk` (enum),
    /// `score` (float), `findings` (string) and `analysedAt` (date).
    pub fn proofpix() -> Self {
        let f = |key: &str, name: &str, kind| TemplateField {
            key: key.into(),
            display_name: name.into(),
            kind,
        };
        Template {
            key: "proofpixPrivacy".into(),
            display_name: "ProofPix privacy".into(),
            fields: vec![
                f(
                    "risk",
                    "Risk",
                    FieldType::Enum(
                        ["None", "Low", "Medium", "High", "Critical"]
                            .iter()
                            .map(|s| (*s).to_owned())
                            .collect(),
                    ),
                ),
                f("score", "Score", FieldType::Float),
                f("findings", "Findings", FieldType::String),
                f("analysedAt", "Analysed at", FieldType::Date),
            ],
        }
    }

    pub(crate) fn render(&self, scope: &str) -> Value {
        json!({
            "id": format!("{:08x}-0000-4000-8000-{:012x}", fnv(&self.key) as u32, fnv(&self.key) & 0xffff_ffff_ffff),
            "type": "metadata_template",
            "templateKey": self.key,
            "scope": scope,
            "displayName": self.display_name,
            "hidden": false,
            "copyInstanceOnItemCopy": false,
            "fields": self.fields.iter().map(|f| {
                let mut v = json!({
                    "id": format!("{:016x}", fnv(&f.key)),
                    "type": f.kind.name(),
                    "key": f.key,
                    "displayName": f.display_name,
                    "hidden": false,
                });
                if let FieldType::Enum(options) = &f.kind {
                    v["options"] = options.iter().map(|o| json!({"id": format!("{:016x}", fnv(o)), "key": o})).collect();
                }
                v
            }).collect::<Vec<_>>(),
        })
    }
}

/// A folder.
#[derive(Clone, Debug)]
pub struct Folder {
    pub(crate) id: String,
    pub(crate) name: String,
    /// `None` for the root.
    pub(crate) parent: Option<String>,
    pub(crate) sequence: u64,
    pub(crate) trashed: bool,
    /// Hidden from the app (not collaborated with the service account): 404.
    pub(crate) hidden: bool,
}

/// A metadata instance on a file.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    pub id: String,
    pub version: u64,
    pub fields: Map<String, Value>,
}

/// A file.
#[derive(Clone, Debug)]
pub struct File {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) parent: String,
    pub(crate) content: Arc<Vec<u8>>,
    pub(crate) sha1: String,
    pub(crate) version_id: String,
    pub(crate) sequence: u64,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) modified_at: OffsetDateTime,
    pub(crate) trashed: bool,
    pub(crate) expect: Expected,
    /// Instances by template key.
    pub(crate) metadata: BTreeMap<String, Instance>,
}

impl File {
    pub(crate) fn extension(&self) -> String {
        self.name
            .rsplit_once('.')
            .map(|(_, e)| e.to_owned())
            .unwrap_or_default()
    }
}

/// One entry of the event stream.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub position: u64,
    pub event_id: String,
    pub event_type: String,
    pub created_at: OffsetDateTime,
    pub source: Value,
}

/// The enterprise.
#[derive(Debug)]
pub(crate) struct Enterprise {
    pub folders: BTreeMap<String, Folder>,
    pub files: BTreeMap<String, File>,
    pub templates: Vec<Template>,
    pub events: Vec<Event>,
    next_id: u64,
    next_version: u64,
    rng: u64,
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}-00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub(crate) fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Enterprise {
    pub(crate) fn build(population: &Population, seed: u64, now: OffsetDateTime) -> Self {
        let mut e = Enterprise {
            folders: BTreeMap::new(),
            files: BTreeMap::new(),
            templates: vec![Template::proofpix()],
            events: Vec::new(),
            next_id: 100_000_000_000,
            next_version: 900_000_000_000,
            rng: seed,
        };
        e.folders.insert(
            "0".into(),
            Folder {
                id: "0".into(),
                name: "All Files".into(),
                parent: None,
                sequence: 0,
                trashed: false,
                hidden: false,
            },
        );
        for f in &population.folders {
            e.folder_at(f, now, false);
        }
        for f in &population.files {
            e.add_file(f, now, false);
        }
        e
    }

    fn next_id(&mut self) -> String {
        self.rng = self
            .rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        self.next_id += 1 + (self.rng >> 60);
        self.next_id.to_string()
    }

    /// The folder at `path` (`a/b`), created as needed; returns its id.
    pub(crate) fn folder_at(&mut self, path: &str, now: OffsetDateTime, log: bool) -> String {
        let mut parent = "0".to_owned();
        for name in path.split('/').filter(|s| !s.is_empty()) {
            let existing = self
                .folders
                .values()
                .find(|f| f.parent.as_deref() == Some(parent.as_str()) && f.name == name)
                .map(|f| f.id.clone());
            parent = match existing {
                Some(id) => id,
                None => {
                    let id = self.next_id();
                    self.folders.insert(
                        id.clone(),
                        Folder {
                            id: id.clone(),
                            name: name.into(),
                            parent: Some(parent.clone()),
                            sequence: 0,
                            trashed: false,
                            hidden: false,
                        },
                    );
                    if log {
                        let source = self.folder_json(&id, true);
                        self.push_event("ITEM_CREATE", source, now);
                    }
                    id
                }
            };
        }
        parent
    }

    pub(crate) fn add_file(&mut self, spec: &FileSpec, now: OffsetDateTime, log: bool) -> String {
        let (dir, name) = spec.path.rsplit_once('/').unwrap_or(("", &spec.path));
        let parent = self.folder_at(dir, now, log);
        let id = self.next_id();
        self.next_version += 1;
        self.files.insert(
            id.clone(),
            File {
                id: id.clone(),
                name: name.into(),
                parent,
                sha1: sha1_hex(&spec.content),
                content: Arc::new(spec.content.clone()),
                version_id: self.next_version.to_string(),
                sequence: 0,
                created_at: now,
                modified_at: now,
                trashed: false,
                expect: spec.expect.clone(),
                metadata: BTreeMap::new(),
            },
        );
        if log {
            let source = self.file_json(&id, &Fields::All);
            self.push_event("ITEM_UPLOAD", source, now);
        }
        id
    }

    pub(crate) fn replace_content(
        &mut self,
        id: &str,
        content: Vec<u8>,
        now: OffsetDateTime,
    ) -> bool {
        self.next_version += 1;
        let version = self.next_version.to_string();
        let Some(f) = self.files.get_mut(id) else {
            return false;
        };
        f.sha1 = sha1_hex(&content);
        f.content = Arc::new(content);
        f.version_id = version;
        f.sequence += 1;
        f.modified_at = now;
        let source = self.file_json(id, &Fields::All);
        self.push_event("ITEM_UPLOAD", source, now);
        true
    }

    pub(crate) fn trash(&mut self, id: &str, now: OffsetDateTime) -> bool {
        let Some(f) = self.files.get_mut(id) else {
            return false;
        };
        f.trashed = true;
        f.sequence += 1;
        let source = self.file_json(id, &Fields::All);
        self.push_event("ITEM_TRASH", source, now);
        true
    }

    pub(crate) fn move_file(&mut self, id: &str, folder: &str, now: OffsetDateTime) -> bool {
        if !self.folders.contains_key(folder) {
            return false;
        }
        let Some(f) = self.files.get_mut(id) else {
            return false;
        };
        f.parent = folder.to_owned();
        f.sequence += 1;
        let source = self.file_json(id, &Fields::All);
        self.push_event("ITEM_MOVE", source, now);
        true
    }

    pub(crate) fn push_event(&mut self, event_type: &str, source: Value, now: OffsetDateTime) {
        let n = self.events.len() as u64 + 1;
        let position = POSITION_BASE + n * POSITION_STEP;
        self.events.push(Event {
            position,
            event_id: format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                fnv(&format!("e{n}")) as u32,
                n & 0xffff,
                n & 0xfff,
                (n >> 12) & 0xfff,
                fnv(event_type) & 0xffff_ffff_ffff
            ),
            event_type: event_type.into(),
            created_at: now,
            source,
        });
    }

    /// The current stream position (`stream_position=now`).
    pub(crate) fn head(&self) -> u64 {
        self.events.last().map_or(POSITION_BASE, |e| e.position)
    }

    /// Ancestors of a folder, root first, the folder itself excluded.
    pub(crate) fn ancestors(&self, folder: &str) -> Vec<&Folder> {
        let mut chain = Vec::new();
        let mut cur = self.folders.get(folder).and_then(|f| f.parent.clone());
        let mut guard = 0;
        while let Some(id) = cur {
            guard += 1;
            if guard > 1000 {
                break;
            }
            let Some(f) = self.folders.get(&id) else {
                break;
            };
            chain.push(f);
            cur = f.parent.clone();
        }
        chain.reverse();
        chain
    }

    fn mini_folder(f: &Folder) -> Value {
        json!({"type": "folder", "id": f.id, "sequence_id": seq(f.sequence, &f.id), "etag": f.sequence.to_string(), "name": f.name})
    }

    fn path_collection(&self, parent: &str, trashed: bool) -> Value {
        let entries: Vec<Value> = if trashed {
            vec![
                json!({"type": "folder", "id": TRASH_ID, "sequence_id": null, "etag": null, "name": "Trash"}),
            ]
        } else {
            let mut chain: Vec<Value> = self
                .ancestors(parent)
                .into_iter()
                .map(Self::mini_folder)
                .collect();
            if let Some(p) = self.folders.get(parent) {
                chain.push(Self::mini_folder(p));
            }
            chain
        };
        json!({"total_count": entries.len(), "entries": entries})
    }

    pub(crate) fn folder_json(&self, id: &str, full: bool) -> Value {
        let Some(f) = self.folders.get(id) else {
            return Value::Null;
        };
        let mut v = Self::mini_folder(f);
        if full {
            let parent = f.parent.clone().unwrap_or_default();
            v["path_collection"] = self.path_collection(&parent, f.trashed);
            v["parent"] = self
                .folders
                .get(&parent)
                .map_or(Value::Null, Self::mini_folder);
            v["item_status"] = json!(if f.trashed { "trashed" } else { "active" });
        }
        v
    }

    /// A file object with the requested fields (`type`, `id` and `etag` always).
    pub(crate) fn file_json(&self, id: &str, fields: &Fields) -> Value {
        let Some(f) = self.files.get(id) else {
            return Value::Null;
        };
        let mut m = Map::new();
        m.insert("type".into(), json!("file"));
        m.insert("id".into(), json!(f.id));
        m.insert("etag".into(), json!(f.sequence.to_string()));
        let all: Vec<(&str, Value)> = vec![
            ("sequence_id", json!(seq(f.sequence, &f.id))),
            ("name", json!(f.name)),
            ("sha1", json!(f.sha1)),
            (
                "file_version",
                json!({"type": "file_version", "id": f.version_id, "sha1": f.sha1}),
            ),
            ("size", json!(f.content.len())),
            ("extension", json!(f.extension())),
            ("created_at", json!(rfc3339(f.created_at))),
            ("modified_at", json!(rfc3339(f.modified_at))),
            ("content_modified_at", json!(rfc3339(f.modified_at))),
            (
                "path_collection",
                self.path_collection(&f.parent, f.trashed),
            ),
            (
                "parent",
                self.folders
                    .get(&f.parent)
                    .map_or(Value::Null, Self::mini_folder),
            ),
            (
                "item_status",
                json!(if f.trashed { "trashed" } else { "active" }),
            ),
        ];
        for (k, v) in all {
            if fields.wants(k) {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    }

    /// A folder as an entry of a listing, with the requested fields.
    pub(crate) fn folder_entry(&self, id: &str, fields: &Fields) -> Value {
        let Some(f) = self.folders.get(id) else {
            return Value::Null;
        };
        let mut v = json!({"type": "folder", "id": f.id, "etag": f.sequence.to_string()});
        for (k, val) in [
            ("sequence_id", json!(seq(f.sequence, &f.id))),
            ("name", json!(f.name)),
        ] {
            if fields.wants(k) {
                v[k] = val;
            }
        }
        v
    }

    /// Children of a folder, folders first, then files, each by name (Box's default order).
    pub(crate) fn children(&self, folder: &str) -> Vec<(bool, String)> {
        let mut dirs: Vec<&Folder> = self
            .folders
            .values()
            .filter(|f| f.parent.as_deref() == Some(folder) && !f.trashed)
            .collect();
        dirs.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        let mut files: Vec<&File> = self
            .files
            .values()
            .filter(|f| f.parent == folder && !f.trashed)
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        dirs.into_iter()
            .map(|d| (true, d.id.clone()))
            .chain(files.into_iter().map(|f| (false, f.id.clone())))
            .collect()
    }

    pub(crate) fn template(&self, key: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.key == key)
    }
}

/// `sequence_id` as Box sends it: a string, null for the root.
fn seq(sequence: u64, id: &str) -> Value {
    if id == "0" {
        Value::Null
    } else {
        json!(sequence.to_string())
    }
}

/// Which fields a request asked for with `fields=`.
#[derive(Clone, Debug)]
pub(crate) enum Fields {
    /// No `fields`: the standard set.
    All,
    /// Only these (plus `type`, `id`, `etag`).
    Only(Vec<String>),
}

impl Fields {
    pub(crate) fn parse(q: Option<&String>) -> Self {
        match q {
            Some(s) if !s.trim().is_empty() => {
                Fields::Only(s.split(',').map(|f| f.trim().to_owned()).collect())
            }
            _ => Fields::All,
        }
    }

    fn wants(&self, name: &str) -> bool {
        match self {
            // The standard set leaves out `extension` (it is in the full set only).
            Fields::All => name != "extension",
            Fields::Only(list) => list.iter().any(|f| f == name),
        }
    }
}

/// SHA-1 of `data`, lowercase hex: Box's `sha1` (the emulator crate has no SHA-1 dependency,
/// and this is twenty lines).
pub(crate) fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_the_standard_test_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }
}
