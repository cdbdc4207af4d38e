//! Builders for the manifest a plugin returns from `describe`.

use crate::{
    AuthScheme, Capability, ConfigField, Endpoint, FieldKind, FilesystemAccess, OauthDialect,
    PluginInfo, RemediationKind, RemoteFile,
};

/// Builds a [`PluginInfo`]; start with [`PluginInfo::builder`].
#[derive(Debug, Clone)]
pub struct PluginInfoBuilder(PluginInfo);

impl PluginInfo {
    /// A manifest with the required identity fields, no capabilities, no
    /// auth, no remediation, a write-back batch size of 50 and a write-back
    /// that is not declared idempotent.
    pub fn builder(
        id: &str,
        version: &str,
        display_name: &str,
        platform: &str,
    ) -> PluginInfoBuilder {
        PluginInfoBuilder(PluginInfo {
            id: id.into(),
            version: version.into(),
            display_name: display_name.into(),
            platform: platform.into(),
            description: String::new(),
            capabilities: Vec::new(),
            config: Vec::new(),
            auth: AuthScheme::None,
            endpoints: Vec::new(),
            filesystem: Vec::new(),
            write_back_batch_size: 50,
            write_back_idempotent: false,
            remediations: Vec::new(),
            oauth_dialect: None,
        })
    }
}

impl PluginInfoBuilder {
    /// One paragraph saying what the plugin does.
    pub fn description(mut self, text: &str) -> Self {
        self.0.description = text.into();
        self
    }

    /// Adds a capability.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.0.capabilities.push(capability);
        self
    }

    /// Adds a config field.
    pub fn field(mut self, field: ConfigField) -> Self {
        self.0.config.push(field);
        self
    }

    /// Sets the authentication scheme.
    pub fn auth(mut self, auth: AuthScheme) -> Self {
        self.0.auth = auth;
        self
    }

    /// Declares an endpoint.
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.0.endpoints.push(endpoint);
        self
    }

    /// Asks for a host directory, mounted at `guest_path`.
    pub fn filesystem(mut self, access: FilesystemAccess) -> Self {
        self.0.filesystem.push(access);
        self
    }

    /// How many results one `write-back` call accepts.
    pub fn write_back_batch_size(mut self, size: u32) -> Self {
        self.0.write_back_batch_size = size.max(1);
        self
    }

    /// Declares that writing the same result twice leaves the platform as
    /// writing it once: a field or column set to a value, a report file
    /// replaced, a reaction that is already there. After a crash interrupted
    /// a write-back, the host then simply writes it again; for a plugin that
    /// does not declare this (a comment, a chatter post) it reports the
    /// write-back to an operator instead, so nothing is ever posted twice.
    ///
    /// Declare it only when it holds for every write-back mode the plugin's
    /// configuration allows.
    pub fn idempotent_write_back(mut self) -> Self {
        self.0.write_back_idempotent = true;
        self
    }

    /// Declares a remediation action the plugin can perform, and the
    /// [`Capability::Remediation`] capability with the first one. The
    /// operator decides per integration which declared actions run, from
    /// which risk level, after which delay, and whether only simulated; the
    /// host never asks for an action the plugin did not declare.
    ///
    /// [`RemediationKind::ReplaceWithSanitised`] is served by
    /// [`crate::Connector::upload`]; every other kind by
    /// [`crate::Connector::remediate`].
    pub fn remediation(mut self, kind: RemediationKind) -> Self {
        if !self.0.capabilities.contains(&Capability::Remediation) {
            self.0.capabilities.push(Capability::Remediation);
        }
        if !self.0.remediations.contains(&kind) {
            self.0.remediations.push(kind);
        }
        self
    }

    /// How the platform's OAuth2 server deviates from RFC 6749 (contract
    /// 0.3): build it from [`OauthDialect::rfc`] and declare only the quirks.
    /// Without one the host speaks plain RFC 6749.
    pub fn oauth_dialect(mut self, dialect: OauthDialect) -> Self {
        self.0.oauth_dialect = Some(dialect);
        self
    }

    /// The finished manifest.
    pub fn build(self) -> PluginInfo {
        self.0
    }
}

impl ConfigField {
    fn base(name: &str, label: &str, help: &str, kind: FieldKind) -> Self {
        ConfigField {
            name: name.into(),
            label: label.into(),
            help: help.into(),
            kind,
            required: true,
            secret: false,
            default_value: None,
            choices: Vec::new(),
            placeholder: None,
        }
    }

    /// A required single-line text field.
    pub fn text(name: &str, label: &str, help: &str) -> Self {
        Self::base(name, label, help, FieldKind::Text)
    }

    /// A required URL field.
    pub fn url(name: &str, label: &str, help: &str) -> Self {
        Self::base(name, label, help, FieldKind::Url)
    }

    /// A required host directory path.
    pub fn path(name: &str, label: &str, help: &str) -> Self {
        Self::base(name, label, help, FieldKind::Path)
    }

    /// A required secret; the plugin never sees its value.
    pub fn secret(name: &str, label: &str, help: &str) -> Self {
        let mut f = Self::base(name, label, help, FieldKind::Text);
        f.secret = true;
        f
    }

    /// A required secret URL, such as a webhook URL that is itself a
    /// credential. The plugin never sees it; it sends a request to the whole
    /// URL by naming it as the request URL `{secret.NAME}`, the only place a
    /// secret may appear in a request (see the README's "Secrets").
    pub fn secret_url(name: &str, label: &str, help: &str) -> Self {
        let mut f = Self::base(name, label, help, FieldKind::Url);
        f.secret = true;
        f
    }

    /// A comma-separated list.
    pub fn list(name: &str, label: &str, help: &str) -> Self {
        Self::base(name, label, help, FieldKind::StringList)
    }

    /// A whole number.
    pub fn integer(name: &str, label: &str, help: &str) -> Self {
        Self::base(name, label, help, FieldKind::Integer)
    }

    /// A yes/no switch, optional, defaulting to `default`.
    pub fn boolean(name: &str, label: &str, help: &str, default: bool) -> Self {
        Self::base(name, label, help, FieldKind::Boolean)
            .optional()
            .default(if default { "true" } else { "false" })
    }

    /// One of `choices`.
    pub fn choice(name: &str, label: &str, help: &str, choices: &[&str]) -> Self {
        let mut f = Self::base(name, label, help, FieldKind::Choice);
        f.choices = choices.iter().map(|c| (*c).to_string()).collect();
        f
    }

    /// Makes the field optional.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Sets a default value (and makes the field optional).
    pub fn default(mut self, value: &str) -> Self {
        self.default_value = Some(value.into());
        self.required = false;
        self
    }

    /// Sets a placeholder shown in empty inputs.
    pub fn placeholder(mut self, value: &str) -> Self {
        self.placeholder = Some(value.into());
        self
    }
}

impl Endpoint {
    /// An endpoint that receives no credentials.
    pub fn new(name: &str, url: &str) -> Self {
        Endpoint {
            name: name.into(),
            url: url.into(),
            credentials: false,
            purpose: String::new(),
            redirect_targets: Vec::new(),
        }
    }

    /// A place responses from this endpoint may redirect to (`scheme://host`,
    /// `*.` wildcard allowed), such as a content host that serves downloads.
    /// The host follows such a redirect without credentials, and only when
    /// the operator granted that host too.
    pub fn redirect_to(mut self, target: &str) -> Self {
        self.redirect_targets.push(target.into());
        self
    }

    /// The host injects the integration's credentials on this endpoint.
    pub fn with_credentials(mut self) -> Self {
        self.credentials = true;
        self
    }

    /// Why the plugin needs it, shown to the operator at install.
    pub fn purpose(mut self, text: &str) -> Self {
        self.purpose = text.into();
        self
    }
}

impl FilesystemAccess {
    /// Read-only access to the directory in config field `config_field`,
    /// mounted at `guest_path`.
    pub fn read_only(guest_path: &str, config_field: &str, purpose: &str) -> Self {
        FilesystemAccess {
            guest_path: guest_path.into(),
            config_field: config_field.into(),
            writable: false,
            purpose: purpose.into(),
        }
    }

    /// Read-write access (the operator must grant write).
    pub fn read_write(guest_path: &str, config_field: &str, purpose: &str) -> Self {
        FilesystemAccess {
            writable: true,
            ..Self::read_only(guest_path, config_field, purpose)
        }
    }
}

// `RemoteFile` is generated by wit-bindgen, so a derive cannot be added to it.
#[allow(clippy::derivable_impls)]
impl Default for RemoteFile {
    fn default() -> Self {
        RemoteFile {
            id: String::new(),
            name: String::new(),
            mime_type: None,
            size: None,
            modified: None,
            version: String::new(),
            container: None,
            web_url: None,
            path: None,
            properties: Vec::new(),
        }
    }
}

impl RemoteFile {
    /// A plugin-private property stored with the file.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
