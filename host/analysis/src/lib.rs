//! Image metadata extraction, privacy findings, risk scoring and lossless stripping. No I/O, no async, no wasmtime.
