//! The emulated tenant behind Graph: SharePoint sites, their document libraries (a drive and its
//! list), drive items with list-item columns, and the change log that `delta` reads.
//!
//! Every change (a new or replaced file, a deletion, a column update) takes the next number of one
//! tenant-wide sequence and stamps the item and its ancestor folders with it, the way Graph reports
//! a changed file's parents too. A delta token names a sequence range, so paging is stable while
//! items change: an item that changes mid-enumeration moves past the page's snapshot and shows up
//! in the next round instead of shifting later pages (reference §2.2).
//!
//! Ids look like SharePoint's (`01` + 32 base32 characters for items, `b!` + 64 base64url
//! characters for drives, `{hostname},{guid},{guid}` for sites) and come from a seeded generator,
//! so a population is the same on every run.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::quickxor::quick_xor_hash;

/// What a seeded file carries, so tests know the findings to expect.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expected {
    /// EXIF GPS position.
    pub gps: bool,
    /// A camera owner or artist name.
    pub person: bool,
    /// A body or lens serial number.
    pub serial: bool,
}

impl Expected {
    /// Whether the analysis should find anything at all.
    pub fn any(&self) -> bool {
        self.gps || self.person || self.serial
    }
}

/// A file to seed.
#[derive(Clone, Debug)]
pub struct FileSpec {
    /// Path inside the library, folders separated by `/` (created as needed).
    pub path: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// `file.mimeType`.
    pub mime: String,
    /// `image` facet (width, height); `None` omits the facet.
    pub image: Option<(u32, u32)>,
    /// `photo.takenDateTime`.
    pub taken: Option<String>,
    /// `location` facet (latitude, longitude, altitude); shown only on personal drives.
    pub location: Option<(f64, f64, Option<f64>)>,
    /// Metadata the bytes carry.
    pub expect: Expected,
}

impl FileSpec {
    /// A file that is not an image.
    pub fn document(path: &str, mime: &str, content: &[u8]) -> Self {
        FileSpec {
            path: path.to_owned(),
            content: content.to_vec(),
            mime: mime.to_owned(),
            image: None,
            taken: None,
            location: None,
            expect: Expected::default(),
        }
    }

    /// A JPEG with the `image` facet.
    pub fn jpeg(path: &str, content: Vec<u8>, size: (u32, u32), expect: Expected) -> Self {
        FileSpec {
            path: path.to_owned(),
            content,
            mime: "image/jpeg".to_owned(),
            image: Some(size),
            taken: None,
            location: None,
            expect,
        }
    }

    /// Whether the file counts as an image for the seeded expectations (facet or MIME type).
    pub fn is_image(&self) -> bool {
        self.image.is_some() || self.mime.starts_with("image/")
    }
}

/// How a column stores values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// Single line of text (255 characters).
    Text,
    /// Multiple lines of text (63 999 characters).
    Note,
    /// A number.
    Number,
    /// A date and time.
    DateTime,
}

/// A list column.
#[derive(Clone, Debug)]
pub struct ColumnSpec {
    /// Internal name (what Graph's `fields` use).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Value type.
    pub kind: ColumnKind,
    /// Whether writes are refused.
    pub read_only: bool,
}

impl ColumnSpec {
    /// A writable column.
    pub fn new(name: &str, kind: ColumnKind) -> Self {
        ColumnSpec {
            name: name.to_owned(),
            display_name: name.to_owned(),
            kind,
            read_only: false,
        }
    }

    fn builtin(name: &str, display: &str, kind: ColumnKind, read_only: bool) -> Self {
        ColumnSpec {
            name: name.to_owned(),
            display_name: display.to_owned(),
            kind,
            read_only,
        }
    }
}

/// The columns every document library has.
pub fn builtin_columns() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec::builtin("Title", "Title", ColumnKind::Text, false),
        ColumnSpec::builtin("FileLeafRef", "Name", ColumnKind::Text, false),
        ColumnSpec::builtin("Modified", "Modified", ColumnKind::DateTime, true),
        ColumnSpec::builtin("Created", "Created", ColumnKind::DateTime, true),
        ColumnSpec::builtin("ContentType", "Content Type", ColumnKind::Text, true),
        ColumnSpec::builtin("_UIVersionString", "Version", ColumnKind::Text, true),
    ]
}

/// The result columns ProofPix writes, with the plugin's default names.
pub fn proofpix_columns() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec::new("ProofPixRisk", ColumnKind::Text),
        ColumnSpec::new("ProofPixScore", ColumnKind::Number),
        ColumnSpec::new("ProofPixFindings", ColumnKind::Note),
        ColumnSpec::new("ProofPixAnalysedAt", ColumnKind::DateTime),
    ]
}

/// A document library to seed.
#[derive(Clone, Debug)]
pub struct LibrarySpec {
    /// Drive and list name as Graph returns it (`Documents`).
    pub name: String,
    /// Last segment of its URL (`Shared Documents`).
    pub url_name: String,
    /// Custom columns (the built-in ones are always there).
    pub columns: Vec<ColumnSpec>,
    /// Files.
    pub files: Vec<FileSpec>,
}

impl LibrarySpec {
    /// A library with the ProofPix result columns and no files.
    pub fn new(name: &str, url_name: &str) -> Self {
        LibrarySpec {
            name: name.to_owned(),
            url_name: url_name.to_owned(),
            columns: proofpix_columns(),
            files: Vec::new(),
        }
    }

    /// Adds a file.
    pub fn file(mut self, file: FileSpec) -> Self {
        self.files.push(file);
        self
    }
}

/// A site to seed.
#[derive(Clone, Debug)]
pub struct SiteSpec {
    /// SharePoint hostname (`contoso.sharepoint.com`).
    pub hostname: String,
    /// Server-relative path (`/sites/fieldwork`), empty for the root site.
    pub path: String,
    /// Display name.
    pub display_name: String,
    /// Libraries.
    pub libraries: Vec<LibrarySpec>,
}

/// What the tenant holds at start.
#[derive(Clone, Debug, Default)]
pub struct Population {
    /// Sites.
    pub sites: Vec<SiteSpec>,
}

/// What the app registration may do (reference §2.4: `Sites.ReadWrite.All`, or `Sites.Selected`
/// with a per-site grant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppPermission {
    /// `Sites.ReadWrite.All`.
    ReadWriteAll,
    /// `Sites.Read.All`: reads work, column updates get 403.
    ReadAll,
    /// `Sites.Selected` with grants on these sites (`hostname/path`, or `hostname` for the root
    /// site); `true` = write.
    Selected(Vec<(String, bool)>),
    /// No SharePoint permission consented: every call gets 403.
    None,
}

impl AppPermission {
    /// Whether the app may read (`write == false`) or write site `key` (`hostname/path`).
    pub(crate) fn allows(&self, key: &str, write: bool) -> bool {
        match self {
            AppPermission::ReadWriteAll => true,
            AppPermission::ReadAll => !write,
            AppPermission::Selected(grants) => grants.iter().any(|(site, w)| {
                site.trim_end_matches('/').eq_ignore_ascii_case(key) && (*w || !write)
            }),
            AppPermission::None => false,
        }
    }
}

/// A deterministic id generator (SplitMix64).
#[derive(Debug)]
pub(crate) struct Ids(u64);

impl Ids {
    pub(crate) fn new(seed: u64) -> Self {
        Ids(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| {
                let i = (self.next() % alphabet.len() as u64) as usize;
                alphabet.get(i).copied().map_or('A', char::from)
            })
            .collect()
    }

    pub(crate) fn guid(&mut self) -> String {
        let hex = self.chars(b"0123456789ABCDEF", 32);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    pub(crate) fn item_id(&mut self) -> String {
        format!("01{}", self.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 32))
    }

    fn drive_id(&mut self) -> String {
        format!(
            "b!{}",
            self.chars(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                64
            )
        )
    }

    pub(crate) fn token(&mut self, n: usize) -> String {
        self.chars(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            n,
        )
    }
}

/// A site at run time.
#[derive(Clone, Debug)]
pub(crate) struct Site {
    pub id: String,
    pub hostname: String,
    pub path: String,
    pub display_name: String,
    pub created: OffsetDateTime,
    pub drive_ids: Vec<String>,
}

impl Site {
    /// `hostname/path`, the key permissions and tests use.
    pub fn key(&self) -> String {
        format!("{}{}", self.hostname, self.path)
    }

    pub fn web_url(&self) -> String {
        format!("https://{}{}", self.hostname, self.path)
    }

    pub fn json(&self) -> Value {
        let name = self.path.rsplit('/').next().unwrap_or_default();
        json!({
            "id": self.id,
            "name": if name.is_empty() { self.display_name.as_str() } else { name },
            "displayName": self.display_name,
            "webUrl": self.web_url(),
            "createdDateTime": rfc3339(self.created),
            "siteCollection": {"hostname": self.hostname},
        })
    }
}

/// A drive item at run time.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub folder: bool,
    pub content: Arc<Vec<u8>>,
    pub mime: Option<String>,
    pub guid: String,
    /// eTag version: every change, content or metadata.
    pub etag_v: u32,
    /// cTag version: content changes only.
    pub ctag_v: u32,
    pub created: OffsetDateTime,
    pub modified: OffsetDateTime,
    pub list_item_id: u64,
    pub fields: Map<String, Value>,
    pub deleted: bool,
    pub seq: u64,
    pub image: Option<(u32, u32)>,
    pub taken: Option<String>,
    pub location: Option<(f64, f64, Option<f64>)>,
    pub hash: String,
    pub expect: Expected,
}

impl Item {
    pub fn etag(&self) -> String {
        format!("\"{{{}}},{}\"", self.guid, self.etag_v)
    }

    pub fn ctag(&self) -> String {
        format!("\"c:{{{}}},{}\"", self.guid, self.ctag_v)
    }
}

/// A document library at run time: the drive, its list and its items.
#[derive(Clone, Debug)]
pub(crate) struct Drive {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub url_name: String,
    pub list_id: String,
    pub root_id: String,
    pub created: OffsetDateTime,
    pub items: BTreeMap<String, Item>,
    pub columns: Vec<ColumnSpec>,
    pub next_list_item: u64,
}

/// Rendering choices that differ between drive types (reference §2.2).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Render<'a> {
    /// `personal` shows the full `photo` and `location` facets; business drives only
    /// `takenDateTime`.
    pub personal: bool,
    /// Whether this is a delta page (no `parentReference.path`; ODfB omits `cTag`).
    pub in_delta: bool,
    /// Whether `cTag` is left out of delta items.
    pub omit_ctag_in_delta: bool,
    /// Whether `file.hashes` is left out.
    pub omit_hashes: bool,
    /// `$select`, when given.
    pub select: Option<&'a [String]>,
    /// Whether `sharepointIds` is returned when selected.
    pub sharepoint_ids: bool,
}

impl Drive {
    pub fn web_url(&self, site: &Site) -> String {
        format!("{}/{}", site.web_url(), encode_path(&self.url_name))
    }

    pub fn json(&self, site: &Site, personal: bool) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": "",
            "driveType": if personal { "personal" } else { "documentLibrary" },
            "webUrl": self.web_url(site),
            "createdDateTime": rfc3339(self.created),
            "quota": {"deleted": 0, "remaining": 1_099_511_627_776_u64, "state": "normal", "total": 1_099_511_627_776_u64, "used": self.used()},
        })
    }

    pub fn list_json(&self, site: &Site) -> Value {
        json!({
            "id": self.list_id,
            "name": self.url_name,
            "displayName": self.name,
            "webUrl": self.web_url(site),
            "createdDateTime": rfc3339(self.created),
            "list": {"contentTypesEnabled": false, "hidden": false, "template": "documentLibrary"},
        })
    }

    fn used(&self) -> u64 {
        self.items
            .values()
            .filter(|i| !i.deleted && !i.folder)
            .map(|i| i.content.len() as u64)
            .sum()
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn columns_json(&self) -> Value {
        let columns: Vec<Value> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut v = json!({
                    "id": format!("{:08x}-0000-4000-8000-{:012x}", i + 1, i + 1),
                    "name": c.name,
                    "displayName": c.display_name,
                    "description": "",
                    "enforceUniqueValues": false,
                    "hidden": false,
                    "indexed": false,
                    "readOnly": c.read_only,
                    "required": false,
                    "columnGroup": "Custom Columns",
                });
                let facet = match c.kind {
                    ColumnKind::Text => (
                        "text",
                        json!({"allowMultipleLines": false, "maxLength": 255}),
                    ),
                    ColumnKind::Note => (
                        "text",
                        json!({"allowMultipleLines": true, "linesForEditing": 6}),
                    ),
                    ColumnKind::Number => (
                        "number",
                        json!({"decimalPlaces": "automatic", "displayAs": "number"}),
                    ),
                    ColumnKind::DateTime => (
                        "dateTime",
                        json!({"displayAs": "default", "format": "dateTime"}),
                    ),
                };
                if let Some(obj) = v.as_object_mut() {
                    obj.insert(facet.0.to_owned(), facet.1);
                }
                v
            })
            .collect();
        json!({ "value": columns })
    }

    /// `/drive/root:/a/b` for an item's parent chain (outside delta).
    fn parent_path(&self, item: &Item) -> String {
        let mut names = Vec::new();
        let mut cur = item.parent.clone();
        let mut guard = 0;
        while let Some(id) = cur {
            guard += 1;
            if guard > 64 {
                break;
            }
            let Some(p) = self.items.get(&id) else { break };
            if id != self.root_id {
                names.push(p.name.clone());
            }
            cur = p.parent.clone();
        }
        names.reverse();
        if names.is_empty() {
            "/drive/root:".to_owned()
        } else {
            format!("/drive/root:/{}", names.join("/"))
        }
    }

    /// Path of an item inside the library (`a/b/c.jpg`).
    pub fn item_path(&self, item: &Item) -> String {
        let parent = self.parent_path(item);
        let dir = parent
            .trim_start_matches("/drive/root:")
            .trim_start_matches('/');
        if dir.is_empty() {
            item.name.clone()
        } else {
            format!("{dir}/{}", item.name)
        }
    }

    pub fn item_json(&self, site: &Site, item: &Item, r: Render<'_>) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(item.id));
        let mut parent = Map::new();
        parent.insert("driveId".into(), json!(self.id));
        parent.insert(
            "driveType".into(),
            json!(if r.personal {
                "personal"
            } else {
                "documentLibrary"
            }),
        );
        if let Some(p) = &item.parent {
            parent.insert("id".into(), json!(p));
        }
        if item.deleted {
            // ODfB leaves out `name` and `cTag` of deleted items (reference §2.2).
            o.insert("deleted".into(), json!({"state": "deleted"}));
            o.insert("parentReference".into(), Value::Object(parent));
            o.insert("lastModifiedDateTime".into(), json!(rfc3339(item.modified)));
            return select(o, r.select);
        }
        if !r.in_delta {
            parent.insert("path".into(), json!(self.parent_path(item)));
        }
        parent.insert("siteId".into(), json!(self.site_id));
        o.insert("name".into(), json!(item.name));
        o.insert("eTag".into(), json!(item.etag()));
        if !(r.in_delta && r.omit_ctag_in_delta) {
            o.insert("cTag".into(), json!(item.ctag()));
        }
        o.insert("createdDateTime".into(), json!(rfc3339(item.created)));
        o.insert("lastModifiedDateTime".into(), json!(rfc3339(item.modified)));
        o.insert(
            "createdBy".into(),
            json!({"user": {"displayName": "System Account"}}),
        );
        o.insert(
            "lastModifiedBy".into(),
            json!({"user": {"displayName": "System Account"}}),
        );
        o.insert("parentReference".into(), Value::Object(parent));
        let web = if item.id == self.root_id {
            self.web_url(site)
        } else {
            format!(
                "{}/{}",
                self.web_url(site),
                encode_path(&self.item_path(item))
            )
        };
        o.insert("webUrl".into(), json!(web));
        if item.folder {
            let children = self
                .items
                .values()
                .filter(|c| c.parent.as_deref() == Some(&item.id) && !c.deleted)
                .count();
            o.insert("size".into(), json!(self.subtree_size(&item.id)));
            o.insert("folder".into(), json!({"childCount": children}));
            if item.id == self.root_id {
                o.insert("root".into(), json!({}));
                o.insert("name".into(), json!("root"));
            }
        } else {
            o.insert("size".into(), json!(item.content.len()));
            let file = if r.omit_hashes {
                json!({"mimeType": item.mime})
            } else {
                json!({"mimeType": item.mime, "hashes": {"quickXorHash": item.hash}})
            };
            o.insert("file".into(), file);
            if let Some((w, h)) = item.image {
                o.insert("image".into(), json!({"width": w, "height": h}));
            }
            if let Some(taken) = &item.taken {
                let photo = if r.personal {
                    json!({"takenDateTime": taken, "cameraMake": "Acme", "cameraModel": "Phone"})
                } else {
                    // On business drives the photo facet carries only takenDateTime.
                    json!({"takenDateTime": taken})
                };
                o.insert("photo".into(), photo);
            }
            if r.personal
                && let Some((lat, lon, alt)) = item.location
            {
                o.insert(
                    "location".into(),
                    json!({"latitude": lat, "longitude": lon, "altitude": alt}),
                );
            }
        }
        let wants_ids = r
            .select
            .is_some_and(|s| s.iter().any(|k| k.eq_ignore_ascii_case("sharepointIds")));
        if wants_ids && r.sharepoint_ids && item.id != self.root_id {
            o.insert(
                "sharepointIds".into(),
                json!({
                    "listId": self.list_id.to_ascii_lowercase(),
                    "listItemId": item.list_item_id.to_string(),
                    "listItemUniqueId": item.guid.to_ascii_lowercase(),
                    "siteId": site.id.split(',').nth(1).unwrap_or_default().to_ascii_lowercase(),
                    "siteUrl": site.web_url(),
                    "webId": site.id.split(',').nth(2).unwrap_or_default().to_ascii_lowercase(),
                }),
            );
        }
        select(o, r.select)
    }

    fn subtree_size(&self, folder: &str) -> u64 {
        self.items
            .values()
            .filter(|i| !i.deleted && !i.folder && self.is_below(i, folder))
            .map(|i| i.content.len() as u64)
            .sum()
    }

    fn is_below(&self, item: &Item, folder: &str) -> bool {
        let mut cur = item.parent.clone();
        let mut guard = 0;
        while let Some(id) = cur {
            if id == folder {
                return true;
            }
            guard += 1;
            if guard > 64 {
                return false;
            }
            cur = self.items.get(&id).and_then(|p| p.parent.clone());
        }
        false
    }

    /// The list item's `fields` (fieldValueSet).
    pub fn fields_json(&self, item: &Item) -> Value {
        let mut o = Map::new();
        o.insert(
            "@odata.etag".into(),
            json!(format!(
                "\"{},{}\"",
                item.guid.to_ascii_lowercase(),
                item.etag_v
            )),
        );
        o.insert("id".into(), json!(item.list_item_id.to_string()));
        o.insert("FileLeafRef".into(), json!(item.name));
        o.insert("Modified".into(), json!(rfc3339(item.modified)));
        o.insert("Created".into(), json!(rfc3339(item.created)));
        o.insert(
            "ContentType".into(),
            json!(if item.folder { "Folder" } else { "Document" }),
        );
        o.insert(
            "_UIVersionString".into(),
            json!(format!("{}.0", item.etag_v)),
        );
        for (k, v) in &item.fields {
            o.insert(k.clone(), v.clone());
        }
        Value::Object(o)
    }

    pub fn item_by_list_item(&self, list_item: &str) -> Option<&Item> {
        self.items
            .values()
            .find(|i| i.list_item_id.to_string() == list_item && !i.deleted)
    }

    /// Items changed in `(after, snapshot]`, oldest change first. With `from == 0` (a full
    /// enumeration) deleted items are left out: they never existed for this client.
    pub fn changes(&self, from: u64, after: u64, snapshot: u64) -> Vec<&Item> {
        let mut v: Vec<&Item> = self
            .items
            .values()
            .filter(|i| i.seq > after.max(from) && i.seq <= snapshot)
            .filter(|i| !(from == 0 && i.deleted))
            .collect();
        v.sort_by_key(|i| i.seq);
        v
    }
}

/// Keeps only the `$select`ed properties (and `id`, and `deleted` on tombstones).
fn select(mut o: Map<String, Value>, select: Option<&[String]>) -> Value {
    if let Some(keys) = select {
        o.retain(|k, _| {
            k == "id" || k == "deleted" || keys.iter().any(|s| s.eq_ignore_ascii_case(k))
        });
    }
    Value::Object(o)
}

/// The whole tenant.
#[derive(Debug)]
pub(crate) struct Tenant {
    pub sites: Vec<Site>,
    pub drives: BTreeMap<String, Drive>,
    pub seq: u64,
    pub ids: Ids,
}

impl Tenant {
    pub fn build(population: &Population, seed: u64, now: OffsetDateTime) -> Self {
        let mut t = Tenant {
            sites: Vec::new(),
            drives: BTreeMap::new(),
            seq: 0,
            ids: Ids::new(seed),
        };
        for spec in &population.sites {
            let site_id = format!(
                "{},{},{}",
                spec.hostname,
                t.ids.guid().to_ascii_lowercase(),
                t.ids.guid().to_ascii_lowercase()
            );
            let mut site = Site {
                id: site_id.clone(),
                hostname: spec.hostname.to_ascii_lowercase(),
                path: spec.path.trim_end_matches('/').to_owned(),
                display_name: spec.display_name.clone(),
                created: now,
                drive_ids: Vec::new(),
            };
            for lib in &spec.libraries {
                let drive_id = t.ids.drive_id();
                let root_id = t.ids.item_id();
                let mut columns = builtin_columns();
                columns.extend(lib.columns.iter().cloned());
                let mut drive = Drive {
                    id: drive_id.clone(),
                    site_id: site_id.clone(),
                    name: lib.name.clone(),
                    url_name: lib.url_name.clone(),
                    list_id: t.ids.guid(),
                    root_id: root_id.clone(),
                    created: now,
                    items: BTreeMap::new(),
                    columns,
                    next_list_item: 1,
                };
                t.seq += 1;
                let root = t.new_item(&mut drive, root_id, "root", None, true, now);
                drive.items.insert(root.id.clone(), root);
                for f in &lib.files {
                    t.add_file(&mut drive, f, now, false);
                }
                site.drive_ids.push(drive_id.clone());
                t.drives.insert(drive_id, drive);
            }
            t.sites.push(site);
        }
        t
    }

    fn new_item(
        &mut self,
        drive: &mut Drive,
        id: String,
        name: &str,
        parent: Option<String>,
        folder: bool,
        now: OffsetDateTime,
    ) -> Item {
        let list_item_id = drive.next_list_item;
        drive.next_list_item += 1;
        Item {
            id,
            name: name.to_owned(),
            parent,
            folder,
            content: Arc::new(Vec::new()),
            mime: None,
            guid: self.ids.guid(),
            etag_v: 1,
            ctag_v: 1,
            created: now,
            modified: now,
            list_item_id,
            fields: Map::new(),
            deleted: false,
            seq: self.seq,
            image: None,
            taken: None,
            location: None,
            hash: String::new(),
            expect: Expected::default(),
        }
    }

    /// Adds a file (and any missing folders); returns its id. With `restamp` (a change after
    /// seeding) its ancestors are listed in delta again; a seeded tree keeps creation order, so
    /// a full enumeration lists every folder before its children.
    pub fn add_file(
        &mut self,
        drive: &mut Drive,
        f: &FileSpec,
        now: OffsetDateTime,
        restamp: bool,
    ) -> String {
        let mut parent = drive.root_id.clone();
        let mut parts: Vec<&str> = f.path.split('/').filter(|p| !p.is_empty()).collect();
        let name = parts.pop().unwrap_or("unnamed");
        for folder in parts {
            let existing = drive
                .items
                .values()
                .find(|i| {
                    i.folder
                        && !i.deleted
                        && i.name == folder
                        && i.parent.as_deref() == Some(&parent)
                })
                .map(|i| i.id.clone());
            parent = match existing {
                Some(id) => id,
                None => {
                    self.seq += 1;
                    let id = self.ids.item_id();
                    let item =
                        self.new_item(drive, id.clone(), folder, Some(parent.clone()), true, now);
                    drive.items.insert(id.clone(), item);
                    id
                }
            };
        }
        self.seq += 1;
        let id = self.ids.item_id();
        let mut item = self.new_item(drive, id.clone(), name, Some(parent), false, now);
        item.content = Arc::new(f.content.clone());
        item.hash = quick_xor_hash(&f.content);
        item.mime = Some(f.mime.clone());
        item.image = f.image;
        item.taken = f.taken.clone();
        item.location = f.location;
        item.expect = f.expect.clone();
        drive.items.insert(id.clone(), item);
        if restamp {
            self.touch_ancestors(drive, &id, now);
        }
        id
    }

    /// Stamps an item's ancestors with a newer change than the item, as Graph lists a changed
    /// file's parents (their size and cTag changed). Parents get the lower numbers so they come
    /// first in delta.
    fn touch_ancestors(&mut self, drive: &mut Drive, id: &str, now: OffsetDateTime) {
        let mut chain = Vec::new();
        let mut cur = drive.items.get(id).and_then(|i| i.parent.clone());
        while let Some(p) = cur {
            if chain.len() > 64 {
                break;
            }
            cur = drive.items.get(&p).and_then(|i| i.parent.clone());
            chain.push(p);
        }
        for p in chain.iter().rev() {
            self.seq += 1;
            if let Some(item) = drive.items.get_mut(p) {
                item.seq = self.seq;
                item.etag_v += 1;
                item.ctag_v += 1;
                item.modified = now;
            }
        }
        self.seq += 1;
        if let Some(item) = drive.items.get_mut(id) {
            item.seq = self.seq;
        }
    }

    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    pub fn site_by_path(&self, hostname: &str, path: &str) -> Option<&Site> {
        let path = path.trim_end_matches('/');
        self.sites.iter().find(|s| {
            s.hostname.eq_ignore_ascii_case(hostname) && s.path.eq_ignore_ascii_case(path)
        })
    }

    pub fn drive_by_list(&self, site_id: &str, list: &str) -> Option<&Drive> {
        self.drives.values().find(|d| {
            d.site_id.eq_ignore_ascii_case(site_id)
                && (d.list_id.eq_ignore_ascii_case(list) || d.name.eq_ignore_ascii_case(list))
        })
    }

    /// Replaces a file's content: new hash, eTag and cTag, and a new change number.
    pub fn replace_content(
        &mut self,
        drive_id: &str,
        item_id: &str,
        content: Vec<u8>,
        now: OffsetDateTime,
    ) -> bool {
        let Some(mut drive) = self.drives.remove(drive_id) else {
            return false;
        };
        let ok = match drive.items.get_mut(item_id) {
            Some(item) if !item.folder && !item.deleted => {
                item.hash = quick_xor_hash(&content);
                item.content = Arc::new(content);
                item.etag_v += 1;
                item.ctag_v += 1;
                item.modified = now;
                item.expect = Expected::default();
                true
            }
            _ => false,
        };
        if ok {
            self.touch_ancestors(&mut drive, item_id, now);
        }
        self.drives.insert(drive_id.to_owned(), drive);
        ok
    }

    /// Deletes an item (a tombstone stays for delta).
    pub fn delete(&mut self, drive_id: &str, item_id: &str, now: OffsetDateTime) -> bool {
        let Some(mut drive) = self.drives.remove(drive_id) else {
            return false;
        };
        let ok = match drive.items.get_mut(item_id) {
            Some(item) if !item.deleted && item_id != drive.root_id => {
                item.deleted = true;
                item.modified = now;
                true
            }
            _ => false,
        };
        if ok {
            self.touch_ancestors(&mut drive, item_id, now);
        }
        self.drives.insert(drive_id.to_owned(), drive);
        ok
    }

    /// Applies a column update (already validated). With `in_delta`, the item counts as changed
    /// (SharePoint bumps the eTag and lists it in delta; the content hash and cTag stay).
    pub fn set_fields(
        &mut self,
        drive_id: &str,
        item_id: &str,
        fields: &Map<String, Value>,
        in_delta: bool,
        now: OffsetDateTime,
    ) {
        if in_delta {
            self.seq += 1;
        }
        let seq = self.seq;
        if let Some(item) = self
            .drives
            .get_mut(drive_id)
            .and_then(|d| d.items.get_mut(item_id))
        {
            for (k, v) in fields {
                item.fields.insert(k.clone(), v.clone());
            }
            item.etag_v += 1;
            item.modified = now;
            if in_delta {
                item.seq = seq;
            }
        }
    }
}

/// RFC 3339, second precision, `Z`.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Percent-encodes a path, keeping `/`.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            url::form_urlencoded::byte_serialize(seg.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        let pop = Population {
            sites: vec![SiteSpec {
                hostname: "contoso.sharepoint.com".into(),
                path: "/sites/a".into(),
                display_name: "A".into(),
                libraries: vec![
                    LibrarySpec::new("Documents", "Shared Documents")
                        .file(FileSpec::document("x/one.txt", "text/plain", b"1"))
                        .file(FileSpec::document("x/two.txt", "text/plain", b"2")),
                ],
            }],
        };
        Tenant::build(&pop, 7, OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn parents_come_before_their_children_in_the_change_order() {
        let t = tenant();
        let drive = t.drives.values().next().unwrap();
        let names: Vec<&str> = drive
            .changes(0, 0, t.seq)
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        let x = names.iter().position(|n| *n == "x").unwrap();
        let one = names.iter().position(|n| *n == "one.txt").unwrap();
        assert!(x < one, "{names:?}");
    }

    #[test]
    fn a_content_change_moves_the_item_past_a_snapshot_and_changes_its_hash() {
        let mut t = tenant();
        let snapshot = t.seq;
        let drive_id = t.drives.keys().next().unwrap().clone();
        let id = t.drives[&drive_id]
            .items
            .values()
            .find(|i| i.name == "one.txt")
            .unwrap()
            .id
            .clone();
        let before = t.drives[&drive_id].items[&id].hash.clone();
        assert!(t.replace_content(
            &drive_id,
            &id,
            b"changed".to_vec(),
            OffsetDateTime::UNIX_EPOCH
        ));
        let drive = &t.drives[&drive_id];
        assert_ne!(drive.items[&id].hash, before);
        let later: Vec<&str> = drive
            .changes(snapshot, snapshot, t.seq)
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert!(
            later.contains(&"one.txt") && later.contains(&"x"),
            "{later:?}"
        );
        assert!(!later.contains(&"two.txt"));
    }

    #[test]
    fn ids_are_the_same_for_the_same_seed() {
        assert_eq!(Ids::new(1).item_id(), Ids::new(1).item_id());
        assert!(Ids::new(1).item_id().starts_with("01"));
    }
}
