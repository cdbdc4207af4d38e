//! The plugin runtime: a narrow wasmtime wrapper that loads connector components into a sandbox.
