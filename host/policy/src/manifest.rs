//! What makes a plugin's manifest usable, and the id rule the host applies to
//! every name it files things under (plugin ids, integration ids).
//!
//! The runtime reads the manifest out of the component and hands its shape
//! here as a [`ManifestShape`]; the rules do not depend on the contract
//! version the plugin was built against.

/// The id rule in words, for error messages.
pub const ID_RULE: &str = "1-64 characters of a-z, 0-9 and -";

/// Whether `id` is 1-64 characters of a-z, 0-9 and `-`: the rule for plugin
/// and integration ids, which name files, URLs and database rows.
pub fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A config field the manifest declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldShape<'a> {
    /// Its name.
    pub name: &'a str,
    /// Whether its value is a secret (kept in the vault, never shown to the
    /// plugin).
    pub secret: bool,
}

/// A filesystem mount the manifest declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountShape<'a> {
    /// Where the plugin sees it.
    pub guest_path: &'a str,
    /// The config field holding the host directory.
    pub config_field: &'a str,
}

/// The parts of a manifest the host checks before it loads a plugin.
#[derive(Debug, Clone, Default)]
pub struct ManifestShape<'a> {
    /// Plugin id.
    pub id: &'a str,
    /// Plugin version.
    pub version: &'a str,
    /// Results per write-back call.
    pub write_back_batch_size: u32,
    /// Declared config fields.
    pub config: Vec<FieldShape<'a>>,
    /// Config fields the auth scheme names, each with the secrecy it needs
    /// (a client secret must be declared secret, a client id must not).
    pub auth_fields: Vec<FieldShape<'a>>,
    /// Declared mounts.
    pub mounts: Vec<MountShape<'a>>,
}

impl ManifestShape<'_> {
    /// Checks the manifest is usable: id, version and field names well
    /// formed, no field declared twice, every field the auth scheme or a
    /// mount names declared with the right secrecy, guest paths absolute.
    ///
    /// # Errors
    /// The first problem found, in words that say what to change.
    pub fn validate(&self) -> Result<(), String> {
        if !is_id(self.id) {
            return Err(format!("id {:?} must be {ID_RULE}", self.id));
        }
        if self.version.is_empty() || self.version.len() > 64 {
            return Err("version must be set (at most 64 characters)".into());
        }
        if self.write_back_batch_size == 0 {
            return Err("write-back-batch-size must be at least 1".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for f in &self.config {
            let snake = !f.name.is_empty()
                && f.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !snake {
                return Err(format!("config field {:?} must be snake_case", f.name));
            }
            if !names.insert(f.name) {
                return Err(format!("config field {:?} is declared twice", f.name));
            }
        }
        for wanted in &self.auth_fields {
            self.declared(wanted.name, wanted.secret, "its auth scheme")?;
        }
        for m in &self.mounts {
            if !m.guest_path.starts_with('/') || m.guest_path.contains("..") {
                return Err(format!(
                    "filesystem guest path {:?} must be absolute",
                    m.guest_path
                ));
            }
            self.declared(m.config_field, false, "a filesystem mount")?;
        }
        Ok(())
    }

    fn declared(&self, name: &str, secret: bool, who: &str) -> Result<(), String> {
        match self.config.iter().find(|f| f.name == name) {
            None => Err(format!(
                "{who} names config field {name:?}, which it does not declare"
            )),
            Some(f) if f.secret != secret => Err(format!(
                "config field {name:?} must be declared {} for {who}",
                if secret { "secret" } else { "not secret" }
            )),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, secret: bool) -> FieldShape<'_> {
        FieldShape { name, secret }
    }

    fn usable() -> ManifestShape<'static> {
        ManifestShape {
            id: "acme-drive",
            version: "1.0.0",
            write_back_batch_size: 10,
            config: vec![field("client_id", false), field("client_secret", true)],
            auth_fields: vec![field("client_id", false), field("client_secret", true)],
            mounts: vec![],
        }
    }

    #[test]
    fn ids_are_1_to_64_of_lowercase_digits_and_dashes() {
        for ok in ["a", "acme-drive", "box2", &"a".repeat(64)] {
            assert!(is_id(ok), "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "acme_drive",
            "acme drive",
            "ä",
            "../x",
            &"a".repeat(65),
        ] {
            assert!(!is_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_well_formed_manifest_passes() {
        assert_eq!(usable().validate(), Ok(()));
    }

    #[test]
    fn each_rule_names_what_to_change() {
        let cases: Vec<(ManifestShape<'static>, &str)> = vec![
            (
                ManifestShape {
                    id: "Acme",
                    ..usable()
                },
                "must be 1-64 characters",
            ),
            (
                ManifestShape {
                    version: "",
                    ..usable()
                },
                "version must be set",
            ),
            (
                ManifestShape {
                    write_back_batch_size: 0,
                    ..usable()
                },
                "at least 1",
            ),
            (
                ManifestShape {
                    config: vec![field("Client", false)],
                    auth_fields: vec![],
                    ..usable()
                },
                "must be snake_case",
            ),
            (
                ManifestShape {
                    config: vec![field("a", false), field("a", true)],
                    auth_fields: vec![],
                    ..usable()
                },
                "declared twice",
            ),
            (
                ManifestShape {
                    auth_fields: vec![field("token", true)],
                    ..usable()
                },
                "its auth scheme names config field \"token\", which it does not declare",
            ),
            (
                ManifestShape {
                    auth_fields: vec![field("client_id", true)],
                    ..usable()
                },
                "\"client_id\" must be declared secret for its auth scheme",
            ),
            (
                ManifestShape {
                    mounts: vec![MountShape {
                        guest_path: "input",
                        config_field: "client_id",
                    }],
                    ..usable()
                },
                "must be absolute",
            ),
            (
                ManifestShape {
                    mounts: vec![MountShape {
                        guest_path: "/in/../etc",
                        config_field: "client_id",
                    }],
                    ..usable()
                },
                "must be absolute",
            ),
            (
                ManifestShape {
                    mounts: vec![MountShape {
                        guest_path: "/in",
                        config_field: "client_secret",
                    }],
                    ..usable()
                },
                "must be declared not secret for a filesystem mount",
            ),
        ];
        for (shape, expected) in cases {
            let err = shape.validate().expect_err(expected);
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
