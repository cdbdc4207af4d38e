//! Host-owned credentials: OAuth2 flows, token refresh with single flight, static keys.
