//! `ferry up`'s data folder: one admin token, written once, private, reused.

use ferry_cli::up;

use crate::helpers::{TempDir, options};

#[tokio::test]
async fn restart_reuses_the_admin_token_and_keeps_it_private() {
    // Arrange
    let dir = TempDir::new();
    let first = up::start(options(dir.path())).await.expect("first start");
    let token = first.admin_token.clone();
    first.shutdown().await;

    // Act
    let second = up::start(options(dir.path())).await.expect("second start");

    // Assert
    assert_eq!(second.admin_token, token);
    assert_eq!(token.len(), 64, "32 random bytes in hex");
    let data = dir.path().join("data");
    let stored = std::fs::read_to_string(data.join(up::ADMIN_TOKEN_FILE)).expect("admin.token");
    assert_eq!(stored.trim(), token);
    let tokens = std::fs::read_to_string(data.join(up::TOKENS_FILE)).expect("tokens");
    assert!(tokens.lines().any(|l| l == format!("{token} admin *")), "{tokens}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [up::ADMIN_TOKEN_FILE, up::TOKENS_FILE] {
            let mode = std::fs::metadata(data.join(file)).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    second.shutdown().await;
}

#[tokio::test]
async fn a_taken_port_fails_the_start() {
    // Arrange
    let dir = TempDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut opts = options(dir.path());
    opts.refresh_port = taken.local_addr().expect("addr").port();

    // Act
    let result = up::start(opts).await;

    // Assert
    let err = result.map(|_| ()).expect_err("the refresh port is taken");
    assert!(format!("{err:#}").contains("refresh-coordinator"), "{err:#}");
}
