//! Running plugins built against contract 0.1 on a 0.2 host.
//!
//! 0.1's import interfaces are implemented here by converting to the latest
//! types and delegating to the latest implementation, and 0.1 exports are
//! called with converted arguments and their results converted back. The
//! conversions are written out for the hot path (HTTP requests and
//! responses) and done through serde for the rest: the generated types of
//! both versions carry the same field names, so a round trip through a JSON
//! value maps them (0.1 records that gained fields in 0.2 get the fields'
//! neutral values). A conversion that fails is a host bug and surfaces as a
//! trap of that call, never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::latest::proofpix::plugin as new;
use crate::bindings::since_v0_1_0::proofpix::plugin as old;
use crate::host_state::HostState;

/// Converts between the versions' generated types by field names.
pub(crate) fn convert<A: Serialize, B: DeserializeOwned>(a: &A) -> wasmtime::Result<B> {
    let value = serde_json::to_value(a)
        .map_err(|e| wasmtime::Error::msg(format!("contract 0.1 compatibility: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| wasmtime::Error::msg(format!("contract 0.1 compatibility: {e}")))
}

/// A 0.1 manifest as the latest one: no remediation, write-back not
/// declared idempotent.
pub(crate) fn manifest(
    info: &crate::bindings::since_v0_1_0::exports::proofpix::plugin::manifest::PluginInfo,
) -> wasmtime::Result<crate::bindings::latest::exports::proofpix::plugin::manifest::PluginInfo> {
    let mut value = serde_json::to_value(info).map_err(|e| wasmtime::Error::msg(e.to_string()))?;
    if let Some(o) = value.as_object_mut() {
        o.insert(
            "write_back_idempotent".into(),
            serde_json::Value::Bool(false),
        );
        o.insert("remediations".into(), serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_value(value)
        .map_err(|e| wasmtime::Error::msg(format!("contract 0.1 compatibility: {e}")))
}

impl old::types::Host for HostState {}

impl old::http::Host for HostState {
    async fn send(
        &mut self,
        request: old::http::Request,
    ) -> wasmtime::Result<Result<old::http::Response, old::http::Error>> {
        let method = match request.method {
            old::http::Method::Get => new::http::Method::Get,
            old::http::Method::Head => new::http::Method::Head,
            old::http::Method::Post => new::http::Method::Post,
            old::http::Method::Put => new::http::Method::Put,
            old::http::Method::Patch => new::http::Method::Patch,
            old::http::Method::Delete => new::http::Method::Delete,
        };
        let req = new::http::Request {
            method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        Ok(
            match <HostState as new::http::Host>::send(self, req).await? {
                Ok(r) => Ok(old::http::Response {
                    status: r.status,
                    headers: r.headers,
                    body: r.body,
                    url: r.url,
                }),
                Err(e) => Err(match e {
                    new::http::Error::Denied(m) => old::http::Error::Denied(m),
                    new::http::Error::InvalidRequest(m) => old::http::Error::InvalidRequest(m),
                    new::http::Error::Timeout(m) => old::http::Error::Timeout(m),
                    new::http::Error::Connection(m) => old::http::Error::Connection(m),
                    new::http::Error::TooLarge(m) => old::http::Error::TooLarge(m),
                }),
            },
        )
    }
}

impl old::state::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        <HostState as new::state::Host>::get(self, key).await
    }
    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
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
        let level = match level {
            old::log::Level::Trace => new::log::Level::Trace,
            old::log::Level::Debug => new::log::Level::Debug,
            old::log::Level::Info => new::log::Level::Info,
            old::log::Level::Warn => new::log::Level::Warn,
            old::log::Level::Error => new::log::Level::Error,
        };
        <HostState as new::log::Host>::log(self, level, message, fields).await
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

fn algorithm(a: old::verify::HmacAlgorithm) -> new::verify::HmacAlgorithm {
    match a {
        old::verify::HmacAlgorithm::Sha1 => new::verify::HmacAlgorithm::Sha1,
        old::verify::HmacAlgorithm::Sha256 => new::verify::HmacAlgorithm::Sha256,
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
            algorithm(a),
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
        <HostState as new::verify::Host>::secret_matches(self, secret_field, candidate).await
    }
    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        <HostState as new::verify::Host>::now_ms(self).await
    }
}
