//! Cross-service tests live in `suite/`.
