//! Local emulators of the vendor APIs and identity providers ProofPix talks to.
