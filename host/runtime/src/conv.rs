//! Typed conversions between contract versions.
//!
//! Each older version's module (`since_v0_1`, `since_v0_2`) implements
//! [`Conv`] between its generated types and `latest`'s, field by field: a
//! record whose fields are the same in both versions is listed with
//! [`record!`], an enum with [`enum_cases!`], a variant with
//! [`variant_cases!`]; anything that changed between versions is written
//! out by hand next to them. A field renamed or added in `latest` makes the
//! listed conversion fail to compile, so a new contract version cannot
//! silently drop or invent a value.

/// Converts a value into another version's type.
pub(crate) trait Conv<T> {
    /// The value as `T`.
    fn conv(self) -> T;
}

macro_rules! identity {
    ($($t:ty),*) => {
        $(impl Conv<$t> for $t {
            #[inline]
            fn conv(self) -> $t {
                self
            }
        })*
    };
}
identity!(String, bool, u8, u16, u32, u64);

impl<A: Conv<B>, B> Conv<Vec<B>> for Vec<A> {
    fn conv(self) -> Vec<B> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<A: Conv<B>, B> Conv<Option<B>> for Option<A> {
    fn conv(self) -> Option<B> {
        self.map(Conv::conv)
    }
}

impl<A: Conv<C>, B: Conv<D>, C, D> Conv<(C, D)> for (A, B) {
    fn conv(self) -> (C, D) {
        (self.0.conv(), self.1.conv())
    }
}

impl<A: Conv<C>, B: Conv<D>, C, D> Conv<Result<C, D>> for Result<A, B> {
    fn conv(self) -> Result<C, D> {
        match self {
            Ok(a) => Ok(a.conv()),
            Err(b) => Err(b.conv()),
        }
    }
}

impl Conv<()> for () {
    fn conv(self) {}
}

/// Both directions between two records with the same fields.
macro_rules! record {
    ($a:ty, $b:ty { $($f:ident),* $(,)? }) => {
        impl $crate::conv::Conv<$b> for $a {
            fn conv(self) -> $b {
                type B = $b;
                B { $($f: $crate::conv::Conv::conv(self.$f)),* }
            }
        }
        impl $crate::conv::Conv<$a> for $b {
            fn conv(self) -> $a {
                type A = $a;
                A { $($f: $crate::conv::Conv::conv(self.$f)),* }
            }
        }
    };
}

/// Both directions between two enums (or variants) with the same cases,
/// unit cases first, then cases with one payload.
macro_rules! variant_cases {
    ($a:ty, $b:ty { $($unit:ident),* $(,)? } { $($case:ident),* $(,)? }) => {
        impl $crate::conv::Conv<$b> for $a {
            #[allow(unreachable_patterns)]
            fn conv(self) -> $b {
                type A = $a;
                type B = $b;
                match self {
                    $(A::$unit => B::$unit,)*
                    $(A::$case(x) => B::$case($crate::conv::Conv::conv(x)),)*
                }
            }
        }
        impl $crate::conv::Conv<$a> for $b {
            #[allow(unreachable_patterns)]
            fn conv(self) -> $a {
                type A = $a;
                type B = $b;
                match self {
                    $(B::$unit => A::$unit,)*
                    $(B::$case(x) => A::$case($crate::conv::Conv::conv(x)),)*
                }
            }
        }
    };
}

/// Both directions between two enums with the same cases.
macro_rules! enum_cases {
    ($a:ty, $b:ty { $($case:ident),* $(,)? }) => {
        $crate::conv::variant_cases!($a, $b { $($case),* } {});
    };
}

/// The conversions of every type that is the same in 0.1, 0.2 and the
/// latest version, between `old`/`old_x` (the older version's imported and
/// exported interfaces, named so at the call site) and `new`/`new_x`.
macro_rules! shared_conversions {
    () => {
        use $crate::conv::variant_cases;
        // types
        record!(old::types::RateLimit, new::types::RateLimit { retry_after_ms, message });
        record!(old::types::ConfigProblem, new::types::ConfigProblem { field, message });
        enum_cases!(old::types::RiskLevel, new::types::RiskLevel { None, Low, Medium, High, Critical });
        record!(
            old::types::RemoteFile,
            new::types::RemoteFile {
                id,
                name,
                mime_type,
                size,
                modified,
                version,
                container,
                web_url,
                path,
                properties
            }
        );
        record!(old::types::Finding, new::types::Finding { category, code, severity, source, value });
        record!(
            old::types::FileResult,
            new::types::FileResult {
                file,
                format,
                risk,
                score,
                findings,
                summary,
                error,
                analysed_at,
                policy_version
            }
        );

        // http
        enum_cases!(old::http::Method, new::http::Method { Get, Head, Post, Put, Patch, Delete });
        record!(old::http::Request, new::http::Request { method, url, headers, body });
        record!(old::http::Response, new::http::Response { status, headers, body, url });
        variant_cases!(old::http::Error, new::http::Error {} {
            Denied,
            InvalidRequest,
            Timeout,
            Connection,
            TooLarge
        });
        enum_cases!(old::log::Level, new::log::Level { Trace, Debug, Info, Warn, Error });
        enum_cases!(old::verify::HmacAlgorithm, new::verify::HmacAlgorithm { Sha1, Sha256 });

        // manifest
        enum_cases!(
            old_x::manifest::FieldKind,
            new_x::manifest::FieldKind {
                Text,
                Multiline,
                Integer,
                Boolean,
                Url,
                Email,
                Path,
                Choice,
                StringList
            }
        );
        record!(
            old_x::manifest::ConfigField,
            new_x::manifest::ConfigField {
                name,
                label,
                help,
                kind,
                required,
                secret,
                default_value,
                choices,
                placeholder
            }
        );
        record!(old_x::manifest::ApiKeyAuth, new_x::manifest::ApiKeyAuth { secret_field, header, prefix });
        record!(
            old_x::manifest::Oauth2Auth,
            new_x::manifest::Oauth2Auth {
                token_url,
                authorize_url,
                scopes,
                client_id_field,
                client_secret_field,
                extra_params
            }
        );
        record!(
            old_x::manifest::PasswordAuth,
            new_x::manifest::PasswordAuth {
                oauth,
                username_field,
                password_field,
                password_suffix_field
            }
        );
        record!(
            old_x::manifest::JwtBearerAuth,
            new_x::manifest::JwtBearerAuth {
                token_url,
                issuer_field,
                subject_field,
                audience,
                private_key_field,
                scopes
            }
        );
        variant_cases!(old_x::manifest::AuthScheme, new_x::manifest::AuthScheme { None } {
            ApiKey,
            Oauth2ClientCredentials,
            Oauth2AuthorizationCode,
            Oauth2Password,
            JwtBearer
        });
        record!(
            old_x::manifest::FilesystemAccess,
            new_x::manifest::FilesystemAccess {
                guest_path,
                config_field,
                writable,
                purpose
            }
        );

        // source
        record!(old_x::source::CheckReport, new_x::source::CheckReport { account, details });
        record!(old_x::source::Page, new_x::source::Page { files, removed, cursor, more });
        variant_cases!(old_x::source::ContentLocation, new_x::source::ContentLocation {} { Http, File });
        record!(old_x::source::DownloadSpec, new_x::source::DownloadSpec { location, supports_range });

        // notifier
        record!(
            old_x::notifier::FileAlert,
            new_x::notifier::FileAlert {
                integration,
                file,
                risk,
                score,
                summary,
                findings
            }
        );
        record!(
            old_x::notifier::BatchSummary,
            new_x::notifier::BatchSummary {
                batch_id,
                integration,
                platform,
                started_at,
                finished_at,
                files_total,
                files_ok,
                files_failed,
                by_risk,
                dashboard_url
            }
        );
        record!(old_x::notifier::Problem, new_x::notifier::Problem { integration, message });

        // events
        record!(
            old_x::events::InboundRequest,
            new_x::events::InboundRequest {
                method,
                path,
                query,
                headers,
                body
            }
        );
        record!(old_x::events::InboundResponse, new_x::events::InboundResponse { status, headers, body });
        record!(
            old_x::events::EventOutcome,
            new_x::events::EventOutcome {
                response,
                changed,
                removed,
                resync
            }
        );

    };
}

/// The import interfaces (`types`, `http`, `state`, `log`, `config`, `verify`) of an older
/// contract version, implemented by converting to the latest types and delegating to the
/// latest implementation. Expands in a module that names the older bindings `old` and the
/// latest `new`; `$extra` are further `verify` functions that version has (0.2's
/// `hmac-sign`).
macro_rules! delegated_imports {
    ($($extra:item)*) => {
        impl old::types::Host for HostState {}

        impl old::http::Host for HostState {
            async fn send(
                &mut self,
                request: old::http::Request,
            ) -> wasmtime::Result<Result<old::http::Response, old::http::Error>> {
                Ok(<HostState as new::http::Host>::send(self, request.conv())
                    .await?
                    .conv())
            }
        }

        impl old::state::Host for HostState {
            async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
                <HostState as new::state::Host>::get(self, key).await
            }
            async fn set(
                &mut self,
                key: String,
                value: Vec<u8>,
            ) -> wasmtime::Result<Result<(), String>> {
                <HostState as new::state::Host>::set(self, key, value).await
            }
            async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
                <HostState as new::state::Host>::delete(self, key).await
            }
        }

        impl old::log::Host for HostState {
            async fn log(
                &mut self,
                level: old::log::Level,
                message: String,
                fields: Vec<(String, String)>,
            ) -> wasmtime::Result<()> {
                <HostState as new::log::Host>::log(self, level.conv(), message, fields).await
            }
        }

        impl old::config::Host for HostState {
            async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
                <HostState as new::config::Host>::get(self, name).await
            }
            async fn auth_context(&mut self, name: String) -> wasmtime::Result<Option<String>> {
                <HostState as new::config::Host>::auth_context(self, name).await
            }
            async fn integration_id(&mut self) -> wasmtime::Result<String> {
                <HostState as new::config::Host>::integration_id(self).await
            }
        }

        impl old::verify::Host for HostState {
            async fn hmac_matches(
                &mut self,
                secret_field: String,
                a: old::verify::HmacAlgorithm,
                message: Vec<u8>,
                expected: Vec<u8>,
            ) -> wasmtime::Result<bool> {
                <HostState as new::verify::Host>::hmac_matches(
                    self,
                    secret_field,
                    a.conv(),
                    message,
                    expected,
                )
                .await
            }
            async fn secret_matches(
                &mut self,
                secret_field: String,
                candidate: String,
            ) -> wasmtime::Result<bool> {
                <HostState as new::verify::Host>::secret_matches(self, secret_field, candidate)
                    .await
            }
            async fn now_ms(&mut self) -> wasmtime::Result<u64> {
                <HostState as new::verify::Host>::now_ms(self).await
            }
            $($extra)*
        }
    };
}

pub(crate) use {delegated_imports, enum_cases, record, shared_conversions, variant_cases};
