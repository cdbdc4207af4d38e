//! The emulated org's data: Cases and Accounts, Salesforce Files (ContentDocument ←
//! ContentVersion ← ContentDocumentLink), legacy Attachments, the result object's metadata and
//! the records a connector created (reference §1.2–§1.4).
//!
//! The population is generated with `proofpix-fixtures`, so every image's metadata, and with it
//! the expected analysis, is known: phone photos carry GPS, a camera serial and an owner name
//! (high risk), "clean" images carry nothing. Distractors that a correct connector must skip are
//! seeded too: a PDF and a text attachment on an in-scope Case, an image linked only to an
//! Account, and images on a Closed Case (out of a `Status != 'Closed'` scope).
//!
//! Tests change the org through [`Org`]: publish a new version of one file (new ContentVersion,
//! new `SystemModstamp` from the emulated clock), add records, take the result object away, deny
//! the user access to Files, or spend the daily API allowance.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value, json};
use sha2::Digest as _;
use time::OffsetDateTime;

use super::soql::{FieldType, QueryError, Tables, format_datetime};
use crate::common::Clock;

/// What the seeded population looks like.
#[derive(Clone, Debug)]
pub struct Seed {
    /// Cases with files (Status cycles New, Working, Escalated).
    pub cases: u32,
    /// Salesforce Files (ContentVersion) linked to each Case.
    pub files_per_case: u32,
    /// Legacy image Attachments on each Case.
    pub attachments_per_case: u32,
    /// Every n-th image carries no metadata (low risk); 0 = none are clean.
    pub clean_every: u32,
    /// Seed the distractors (non-images, an Account-only image, a Closed Case).
    pub distractors: bool,
}

impl Default for Seed {
    fn default() -> Self {
        Seed {
            cases: 4,
            files_per_case: 2,
            attachments_per_case: 1,
            clean_every: 3,
            distractors: true,
        }
    }
}

/// One field of a custom object, as its describe reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// API name.
    pub name: String,
    /// Describe type: `string`, `double`, `datetime`, `url`, `textarea`, `picklist`.
    pub kind: &'static str,
    /// Maximum length of text types.
    pub length: Option<u32>,
    /// Required on create.
    pub required: bool,
    /// The user may set it.
    pub createable: bool,
    /// Allowed values of a restricted picklist.
    pub picklist: Vec<String>,
}

impl FieldDef {
    fn new(name: &str, kind: &'static str, length: Option<u32>) -> Self {
        FieldDef {
            name: name.to_owned(),
            kind,
            length,
            required: false,
            createable: true,
            picklist: Vec::new(),
        }
    }
}

/// The custom object results are written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomObjectDef {
    /// API name, e.g. `ProofPix_Analysis__c`.
    pub name: String,
    /// Label.
    pub label: String,
    /// Whether the integration user may create records.
    pub createable: bool,
    /// Whether `Name` is an auto-number (then it is not createable).
    pub name_auto_number: bool,
    /// Custom fields.
    pub fields: Vec<FieldDef>,
}

impl CustomObjectDef {
    /// `ProofPix_Analysis__c` with the fields the first-party plugin writes.
    pub fn proofpix_analysis() -> Self {
        let mut risk = FieldDef::new("Risk_Level__c", "picklist", Some(255));
        risk.picklist = ["none", "low", "medium", "high", "critical"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        CustomObjectDef {
            name: "ProofPix_Analysis__c".into(),
            label: "ProofPix Analysis".into(),
            createable: true,
            name_auto_number: false,
            fields: vec![
                FieldDef::new("File_Id__c", "string", Some(18)),
                FieldDef::new("File_Version__c", "string", Some(18)),
                FieldDef::new("File_Name__c", "string", Some(255)),
                FieldDef::new("File_Link__c", "url", Some(255)),
                FieldDef::new("Related_Record__c", "string", Some(18)),
                risk,
                FieldDef::new("Risk_Score__c", "double", None),
                FieldDef::new("Findings_Summary__c", "textarea", Some(32_768)),
                FieldDef::new("Analysed_At__c", "datetime", None),
                FieldDef::new("Policy_Version__c", "string", Some(64)),
            ],
        }
    }

    /// Drops a field (to test a misconfigured object).
    pub fn without_field(mut self, name: &str) -> Self {
        self.fields.retain(|f| f.name != name);
        self
    }
}

/// What the integration user may see.
#[derive(Clone, Copy, Debug)]
pub struct Permissions {
    /// Salesforce Files (ContentVersion, ContentDocument, ContentDocumentLink).
    pub files: bool,
    /// Attachments.
    pub attachments: bool,
    /// "Query All Files": ContentDocumentLink without a filter on an id.
    pub query_all_files: bool,
}

impl Default for Permissions {
    fn default() -> Self {
        Permissions {
            files: true,
            attachments: true,
            query_all_files: false,
        }
    }
}

/// How a file of the population is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A Salesforce File: id is the ContentDocumentId, version the ContentVersion id.
    ContentVersion,
    /// A legacy Attachment: id and version are the Attachment id.
    Attachment,
}

/// A seeded image, with what its analysis should find.
#[derive(Clone, Debug)]
pub struct SeededFile {
    /// ContentDocument id or Attachment id (what a connector should use as the file id).
    pub id: String,
    /// Latest ContentVersion id (or the Attachment id).
    pub version_id: String,
    /// Storage kind.
    pub kind: FileKind,
    /// File name.
    pub name: String,
    /// The record it is linked to.
    pub parent: String,
    /// The parent Case's status (`Closed` for out-of-scope ones), or `Account`.
    pub parent_status: String,
    /// Carries GPS, serial and owner.
    pub high_risk: bool,
    /// Whether it is an image at all.
    pub image: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Version {
    pub(crate) id: String,
    pub(crate) document: String,
    pub(crate) title: String,
    pub(crate) extension: String,
    pub(crate) number: u32,
    pub(crate) latest: bool,
    pub(crate) modstamp: OffsetDateTime,
    pub(crate) created: OffsetDateTime,
    pub(crate) bytes: Arc<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub(crate) struct Link {
    id: String,
    document: String,
    entity: String,
    modstamp: OffsetDateTime,
}

#[derive(Clone, Debug)]
pub(crate) struct Attachment {
    pub(crate) id: String,
    name: String,
    pub(crate) content_type: String,
    parent: String,
    modstamp: OffsetDateTime,
    created: OffsetDateTime,
    pub(crate) bytes: Arc<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct Parent {
    id: String,
    object: &'static str,
    name: String,
    status: String,
    modstamp: OffsetDateTime,
}

/// A record a client created through the API.
#[derive(Clone, Debug)]
pub struct CreatedRecord {
    /// Its new id.
    pub id: String,
    /// Object API name.
    pub object: String,
    /// Fields as sent (without `attributes`).
    pub fields: Map<String, Value>,
    /// Emulated time of creation.
    pub at: OffsetDateTime,
}

/// When a record of an sObject Collections create fails on purpose.
#[derive(Clone, Debug)]
pub struct RecordFailure {
    /// Field whose value selects the records to fail (e.g. `File_Id__c`).
    pub field: String,
    /// Values that fail.
    pub values: Vec<String>,
    /// `statusCode` of the error, e.g. `FIELD_CUSTOM_VALIDATION_EXCEPTION`.
    pub status_code: String,
    /// Message.
    pub message: String,
    /// How many times each value fails before it is accepted (`None` = always).
    pub times: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct OrgData {
    parents: Vec<Parent>,
    pub(crate) versions: Vec<Version>,
    links: Vec<Link>,
    pub(crate) attachments: Vec<Attachment>,
    pub(crate) result_object: Option<CustomObjectDef>,
    pub(crate) created: Vec<CreatedRecord>,
    pub(crate) permissions: Permissions,
    pub(crate) failures: Vec<(RecordFailure, BTreeMap<String, u32>)>,
    seeded: Vec<SeededFile>,
    next_id: u64,
}

/// The org's data, shared between the routes and the test that drives them.
#[derive(Clone, Debug)]
pub struct Org {
    data: Arc<Mutex<OrgData>>,
    clock: Clock,
}

/// Salesforce file types for extensions (`FileType` holds upper-case codes, reference §1.2).
fn file_type(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "JPG",
        "png" => "PNG",
        "gif" => "GIF",
        "pdf" => "PDF",
        "txt" => "TEXT",
        _ => "UNKNOWN",
    }
}

/// The MIME type Salesforce sends for an extension.
pub(crate) fn mime(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

impl Org {
    pub(crate) fn new(
        clock: Clock,
        seed: &Seed,
        result_object: Option<CustomObjectDef>,
        permissions: Permissions,
    ) -> Self {
        let org = Org {
            data: Arc::new(Mutex::new(OrgData {
                parents: Vec::new(),
                versions: Vec::new(),
                links: Vec::new(),
                attachments: Vec::new(),
                result_object,
                created: Vec::new(),
                permissions,
                failures: Vec::new(),
                seeded: Vec::new(),
                next_id: 1,
            })),
            clock,
        };
        org.seed(seed);
        org
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, OrgData> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn seed(&self, seed: &Seed) {
        // Seeded records are a month old, a minute apart, so incremental filters have history.
        let start = self.clock.now() - time::Duration::days(30);
        let mut minute = 0i64;
        let mut at = || {
            minute += 1;
            start + time::Duration::minutes(minute)
        };
        let mut image_no = 0u32;
        let mut next_image = |clean_every: u32| {
            image_no += 1;
            let clean = clean_every > 0 && image_no.is_multiple_of(clean_every);
            let gps = proofpix_fixtures::Gps {
                lat: 48.0 + f64::from(image_no % 100) / 100.0,
                lon: 2.0 + f64::from(image_no % 97) / 97.0,
                alt: Some(35.0),
            };
            let bytes = proofpix_fixtures::jpeg(&proofpix_fixtures::JpegSpec {
                width: 64,
                height: 48,
                seed: image_no,
                exif: (!clean).then(|| proofpix_fixtures::phone_photo(image_no, gps)),
                ..Default::default()
            });
            (bytes, !clean, image_no)
        };
        let statuses = ["New", "Working", "Escalated"];
        for c in 0..seed.cases {
            let status = statuses
                .get(c as usize % statuses.len())
                .copied()
                .unwrap_or("New");
            let case = self.add_parent("Case", &format!("Site inspection {}", c + 1), status, at());
            for _ in 0..seed.files_per_case {
                let (bytes, risky, n) = next_image(seed.clean_every);
                let name = format!("IMG_{:04}.jpg", 1000 + n);
                self.add_file_at(&case, &name, bytes, at(), risky, true);
            }
            for _ in 0..seed.attachments_per_case {
                let (bytes, risky, n) = next_image(seed.clean_every);
                let name = format!("photo-{:04}.jpg", n);
                self.add_attachment_at(&case, &name, "image/jpeg", bytes, at(), risky);
            }
        }
        if seed.distractors {
            let first = self.lock().parents.first().map(|p| p.id.clone());
            if let Some(case) = first {
                self.add_file_at(
                    &case,
                    "contract.pdf",
                    b"%PDF-1.4\n%%EOF\n".to_vec(),
                    at(),
                    false,
                    false,
                );
                self.add_attachment_at(
                    &case,
                    "notes.txt",
                    "text/plain",
                    b"call back tomorrow".to_vec(),
                    at(),
                    false,
                );
            }
            let account = self.add_parent("Account", "Acme Corp", "", at());
            let (bytes, risky, _) = next_image(0);
            self.add_file_at(&account, "logo-shoot.jpg", bytes, at(), risky, true);
            let closed = self.add_parent("Case", "Closed inspection", "Closed", at());
            let (bytes, risky, _) = next_image(0);
            self.add_file_at(&closed, "old-site.jpg", bytes, at(), risky, true);
            let (bytes, risky, _) = next_image(0);
            self.add_attachment_at(
                &closed,
                "old-attachment.jpg",
                "image/jpeg",
                bytes,
                at(),
                risky,
            );
        }
    }

    fn new_id(&self, prefix: &str) -> String {
        mint(&mut self.lock(), prefix)
    }

    fn add_parent(
        &self,
        object: &'static str,
        name: &str,
        status: &str,
        at: OffsetDateTime,
    ) -> String {
        let id = self.new_id(if object == "Case" { "500" } else { "001" });
        self.lock().parents.push(Parent {
            id: id.clone(),
            object,
            name: name.to_owned(),
            status: status.to_owned(),
            modstamp: at,
        });
        id
    }

    fn parent_status(&self, parent: &str) -> String {
        self.lock()
            .parents
            .iter()
            .find(|p| p.id == parent)
            .map(|p| {
                if p.object == "Case" {
                    p.status.clone()
                } else {
                    p.object.to_owned()
                }
            })
            .unwrap_or_default()
    }

    fn add_file_at(
        &self,
        parent: &str,
        name: &str,
        bytes: Vec<u8>,
        at: OffsetDateTime,
        risky: bool,
        image: bool,
    ) -> (String, String) {
        let document = self.new_id("069");
        let version = self.new_id("068");
        let link = self.new_id("06A");
        let (title, extension) = match name.rsplit_once('.') {
            Some((t, e)) => (t.to_owned(), e.to_ascii_lowercase()),
            None => (name.to_owned(), String::new()),
        };
        let status = self.parent_status(parent);
        let mut d = self.lock();
        d.versions.push(Version {
            id: version.clone(),
            document: document.clone(),
            title,
            extension,
            number: 1,
            latest: true,
            modstamp: at,
            created: at,
            bytes: Arc::new(bytes),
        });
        d.links.push(Link {
            id: link,
            document: document.clone(),
            entity: parent.to_owned(),
            modstamp: at,
        });
        d.seeded.push(SeededFile {
            id: document.clone(),
            version_id: version.clone(),
            kind: FileKind::ContentVersion,
            name: name.to_owned(),
            parent: parent.to_owned(),
            parent_status: status,
            high_risk: risky,
            image,
        });
        (document, version)
    }

    fn add_attachment_at(
        &self,
        parent: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
        at: OffsetDateTime,
        risky: bool,
    ) -> String {
        let id = self.new_id("00P");
        let status = self.parent_status(parent);
        let mut d = self.lock();
        d.attachments.push(Attachment {
            id: id.clone(),
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            parent: parent.to_owned(),
            modstamp: at,
            created: at,
            bytes: Arc::new(bytes),
        });
        d.seeded.push(SeededFile {
            id: id.clone(),
            version_id: id.clone(),
            kind: FileKind::Attachment,
            name: name.to_owned(),
            parent: parent.to_owned(),
            parent_status: status,
            high_risk: risky,
            image: content_type.starts_with("image/"),
        });
        id
    }

    /// Every seeded or added file, images and distractors, with what analysis should find.
    pub fn files(&self) -> Vec<SeededFile> {
        self.lock().seeded.clone()
    }

    /// Ids of every Case, in creation order.
    pub fn cases(&self) -> Vec<String> {
        self.lock()
            .parents
            .iter()
            .filter(|p| p.object == "Case")
            .map(|p| p.id.clone())
            .collect()
    }

    /// Adds a Case, modified now.
    pub fn add_case(&self, subject: &str, status: &str) -> String {
        self.add_parent("Case", subject, status, self.clock.now())
    }

    /// Adds a JPEG File linked to `parent`, modified now: (ContentDocument id, ContentVersion id).
    pub fn add_file(
        &self,
        parent: &str,
        name: &str,
        bytes: Vec<u8>,
        high_risk: bool,
    ) -> (String, String) {
        let image = name.rsplit_once('.').is_some_and(|(_, e)| {
            matches!(
                e.to_ascii_lowercase().as_str(),
                "jpg" | "jpeg" | "png" | "gif"
            )
        });
        self.add_file_at(parent, name, bytes, self.clock.now(), high_risk, image)
    }

    /// Adds an Attachment on `parent`, modified now.
    pub fn add_attachment(
        &self,
        parent: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
        high_risk: bool,
    ) -> String {
        self.add_attachment_at(
            parent,
            name,
            content_type,
            bytes,
            self.clock.now(),
            high_risk,
        )
    }

    /// Publishes a new version of a File: a new ContentVersion (the old one stops being
    /// `IsLatest`) stamped with the emulated clock's now. `bytes` default to the old content with
    /// a different trailer. Returns the new ContentVersion id, or `None` for an unknown document.
    pub fn new_version(&self, document: &str, bytes: Option<Vec<u8>>) -> Option<String> {
        let id = self.new_id("068");
        let now = self.clock.now();
        let mut d = self.lock();
        let old = d
            .versions
            .iter_mut()
            .find(|v| v.document == document && v.latest)?;
        old.latest = false;
        let mut new = old.clone();
        new.id = id.clone();
        new.number += 1;
        new.latest = true;
        new.modstamp = now;
        new.created = now;
        new.bytes = Arc::new(bytes.unwrap_or_else(|| {
            let mut b = old.bytes.as_ref().clone();
            b.extend_from_slice(format!("v{}", new.number).as_bytes());
            b
        }));
        d.versions.push(new);
        if let Some(s) = d.seeded.iter_mut().find(|s| s.id == document) {
            s.version_id = id.clone();
        }
        Some(id)
    }

    /// Links an existing File to another record, now.
    pub fn link(&self, document: &str, entity: &str) -> String {
        let id = self.new_id("06A");
        let now = self.clock.now();
        self.lock().links.push(Link {
            id: id.clone(),
            document: document.to_owned(),
            entity: entity.to_owned(),
            modstamp: now,
        });
        id
    }

    /// Records created through the API for `object`, oldest first.
    pub fn created(&self, object: &str) -> Vec<CreatedRecord> {
        self.lock()
            .created
            .iter()
            .filter(|r| r.object == object)
            .cloned()
            .collect()
    }

    /// Replaces (or removes, with `None`) the result object definition.
    pub fn set_result_object(&self, object: Option<CustomObjectDef>) {
        self.lock().result_object = object;
    }

    /// Changes what the integration user may see.
    pub fn set_permissions(&self, permissions: Permissions) {
        self.lock().permissions = permissions;
    }

    /// Fails records of sObject Collections creates that match `failure`.
    pub fn fail_records(&self, failure: RecordFailure) {
        self.lock().failures.push((failure, BTreeMap::new()));
    }

    /// Removes every record-failure rule.
    pub fn clear_record_failures(&self) {
        self.lock().failures.clear();
    }

    /// Bytes of a ContentVersion's `VersionData`.
    pub(crate) fn version_data(&self, id: &str) -> Option<(Arc<Vec<u8>>, &'static str)> {
        let d = self.lock();
        d.versions
            .iter()
            .find(|v| v.id == id)
            .map(|v| (v.bytes.clone(), mime(&v.extension)))
    }

    /// Bytes of an Attachment's `Body`.
    pub(crate) fn attachment_body(&self, id: &str) -> Option<(Arc<Vec<u8>>, String)> {
        let d = self.lock();
        d.attachments
            .iter()
            .find(|a| a.id == id)
            .map(|a| (a.bytes.clone(), a.content_type.clone()))
    }

    /// A new id for a created custom-object record, while the caller holds the lock.
    pub(crate) fn record_id_locked(&self, data: &mut OrgData) -> String {
        mint(data, "a01")
    }
}

/// A new 18-character id: 3-char key prefix + 12 chars make the 15-char id, 3 checksum chars
/// follow.
fn mint(d: &mut OrgData, prefix: &str) -> String {
    let n = d.next_id;
    d.next_id += 1;
    format!("{prefix}x{n:011}AAA")
}

const ID: FieldType = FieldType::Id;
const TEXT: FieldType = FieldType::Text;
const DT: FieldType = FieldType::DateTime;

fn fields(list: &[(&str, FieldType)]) -> Vec<(String, FieldType)> {
    list.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect()
}

fn row(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A checksum in the shape of ContentVersion.Checksum (32 hex characters; Salesforce's is MD5,
/// this is the first half of SHA-256 since only its shape matters).
fn checksum(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
        .chars()
        .take(32)
        .collect()
}

impl Tables for OrgData {
    fn schema(&self, object: &str) -> Result<(String, Vec<(String, FieldType)>), QueryError> {
        let unsupported = || QueryError {
            code: "INVALID_TYPE",
            message: format!(
                "sObject type '{object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
            ),
        };
        let files = |f: Vec<(String, FieldType)>, name: &str| {
            if self.permissions.files {
                Ok((name.to_owned(), f))
            } else {
                Err(unsupported())
            }
        };
        match object.to_ascii_lowercase().as_str() {
            "case" => Ok((
                "Case".into(),
                fields(&[
                    ("Id", ID),
                    ("CaseNumber", TEXT),
                    ("Subject", TEXT),
                    ("Status", TEXT),
                    ("SystemModstamp", DT),
                    ("CreatedDate", DT),
                ]),
            )),
            "account" => Ok((
                "Account".into(),
                fields(&[("Id", ID), ("Name", TEXT), ("SystemModstamp", DT)]),
            )),
            "contentversion" => files(
                fields(&[
                    ("Id", ID),
                    ("ContentDocumentId", ID),
                    ("Title", TEXT),
                    ("PathOnClient", TEXT),
                    ("FileExtension", TEXT),
                    ("FileType", TEXT),
                    ("ContentSize", FieldType::Int),
                    ("Checksum", TEXT),
                    ("VersionNumber", TEXT),
                    ("IsLatest", FieldType::Bool),
                    ("SystemModstamp", DT),
                    ("CreatedDate", DT),
                ]),
                "ContentVersion",
            ),
            "contentdocument" => files(
                fields(&[
                    ("Id", ID),
                    ("Title", TEXT),
                    ("FileExtension", TEXT),
                    ("LatestPublishedVersionId", ID),
                    ("ContentSize", FieldType::Int),
                    ("SystemModstamp", DT),
                ]),
                "ContentDocument",
            ),
            "contentdocumentlink" => files(
                fields(&[
                    ("Id", ID),
                    ("ContentDocumentId", ID),
                    ("LinkedEntityId", ID),
                    ("ShareType", TEXT),
                    ("Visibility", TEXT),
                    ("SystemModstamp", DT),
                ]),
                "ContentDocumentLink",
            ),
            "attachment" if self.permissions.attachments => Ok((
                "Attachment".into(),
                fields(&[
                    ("Id", ID),
                    ("Name", TEXT),
                    ("ContentType", TEXT),
                    ("BodyLength", FieldType::Int),
                    ("ParentId", ID),
                    ("SystemModstamp", DT),
                    ("CreatedDate", DT),
                    ("LastModifiedDate", DT),
                ]),
            )),
            other => match &self.result_object {
                Some(o) if o.name.eq_ignore_ascii_case(other) => {
                    let mut f = fields(&[("Id", ID), ("Name", TEXT), ("CreatedDate", DT)]);
                    f.extend(o.fields.iter().map(|d| {
                        let t = match d.kind {
                            "double" => FieldType::Int,
                            "datetime" => DT,
                            _ => TEXT,
                        };
                        (d.name.clone(), t)
                    }));
                    Ok((o.name.clone(), f))
                }
                _ => Err(unsupported()),
            },
        }
    }

    fn rows(&self, object: &str) -> Vec<Map<String, Value>> {
        let ts = |t: &OffsetDateTime| format_datetime(*t);
        match object {
            "Case" | "Account" => self
                .parents
                .iter()
                .filter(|p| p.object == object)
                .enumerate()
                .map(|(i, p)| {
                    row(json!({
                        "Id": p.id, "CaseNumber": format!("{:08}", 1000 + i), "Subject": p.name, "Name": p.name,
                        "Status": p.status, "SystemModstamp": ts(&p.modstamp), "CreatedDate": ts(&p.modstamp),
                    }))
                })
                .collect(),
            "ContentVersion" => self
                .versions
                .iter()
                .map(|v| {
                    row(json!({
                        "Id": v.id, "ContentDocumentId": v.document, "Title": v.title,
                        "PathOnClient": format!("{}.{}", v.title, v.extension), "FileExtension": v.extension,
                        "FileType": file_type(&v.extension), "ContentSize": v.bytes.len(), "Checksum": checksum(&v.bytes),
                        "VersionNumber": v.number.to_string(), "IsLatest": v.latest,
                        "SystemModstamp": ts(&v.modstamp), "CreatedDate": ts(&v.created),
                    }))
                })
                .collect(),
            "ContentDocument" => self
                .versions
                .iter()
                .filter(|v| v.latest)
                .map(|v| {
                    row(json!({
                        "Id": v.document, "Title": v.title, "FileExtension": v.extension,
                        "LatestPublishedVersionId": v.id, "ContentSize": v.bytes.len(), "SystemModstamp": ts(&v.modstamp),
                    }))
                })
                .collect(),
            "ContentDocumentLink" => self
                .links
                .iter()
                .map(|l| {
                    row(json!({
                        "Id": l.id, "ContentDocumentId": l.document, "LinkedEntityId": l.entity,
                        "ShareType": "V", "Visibility": "AllUsers", "SystemModstamp": ts(&l.modstamp),
                    }))
                })
                .collect(),
            "Attachment" => self
                .attachments
                .iter()
                .map(|a| {
                    row(json!({
                        "Id": a.id, "Name": a.name, "ContentType": a.content_type, "BodyLength": a.bytes.len(),
                        "ParentId": a.parent, "SystemModstamp": ts(&a.modstamp), "CreatedDate": ts(&a.created),
                        "LastModifiedDate": ts(&a.modstamp),
                    }))
                })
                .collect(),
            other => self
                .created
                .iter()
                .filter(|r| r.object == other)
                .map(|r| {
                    let mut m = r.fields.clone();
                    m.insert("Id".into(), json!(r.id));
                    m.insert("CreatedDate".into(), json!(ts(&r.at)));
                    m
                })
                .collect(),
        }
    }
}
