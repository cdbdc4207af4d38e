//! Test-only RSA key pairs (see `fixtures/README.md`): they sign and verify JWT bearer assertions
//! between the code under test and the emulated providers, and grant access to nothing real.

/// Key A, private, PKCS#8 PEM (`BEGIN PRIVATE KEY`, the form in a Google service-account key file).
pub const PRIVATE_KEY_A_PEM: &str = include_str!("../fixtures/test-rsa-a.pkcs8.pem");
/// Key A, public, SPKI PEM. The emulators register this key by default.
pub const PUBLIC_KEY_A_PEM: &str = include_str!("../fixtures/test-rsa-a.pub.pem");
/// Key B, private, PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`, as older `openssl genrsa` writes).
pub const PRIVATE_KEY_B_PEM: &str = include_str!("../fixtures/test-rsa-b.pkcs1.pem");
/// Key B, public, SPKI PEM.
pub const PUBLIC_KEY_B_PEM: &str = include_str!("../fixtures/test-rsa-b.pub.pem");
