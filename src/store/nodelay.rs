//! TCP_NODELAY on the PostgreSQL connections.
//!
//! sqlx 0.9.0 no longer sets it (a regression its maintainers have fixed after that release).
//! Without it, a message larger than one TLS record (16 KiB) leaves as two writes, and Nagle's
//! algorithm holds the second until the server's delayed ACK: every statement over ~16 KiB
//! took 44 ms instead of 0.6 ms on a loopback TLS connection (measured with an 18 KiB insert).
//! A webhook batch, or one large order, is such a statement. sqlx exposes no socket, so each
//! new connection asks the server for its client port and sets the option on the process's
//! socket with that local port and the server's port.

use sea_orm::sqlx::postgres::{PgConnection, PgPoolOptions};

/// `options` with every new connection getting TCP_NODELAY; `server_port` is the database's.
pub fn on_connect(options: PgPoolOptions, server_port: u16) -> PgPoolOptions {
    options.after_connect(move |conn, _| Box::pin(set(conn, server_port)))
}

/// Sets TCP_NODELAY on `conn`'s socket. A Unix-socket connection has no client port and no
/// Nagle; it is left alone.
async fn set(conn: &mut PgConnection, server_port: u16) -> Result<(), sea_orm::sqlx::Error> {
    let client_port: Option<i32> = sea_orm::sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(conn)
        .await?;
    let Some(port) = client_port.and_then(|p| u16::try_from(p).ok()) else {
        return Ok(());
    };
    let mut found = false;
    for_each_tcp_socket(|socket, local, peer| {
        if local == port && peer == server_port {
            found = true;
            if let Err(e) = socket.set_tcp_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY on a database connection");
            }
        }
    });
    if !found && cfg!(target_os = "linux") {
        // Behind a proxy or NAT the server sees another port; statements still work, only
        // large ones may wait for the delayed ACK.
        tracing::debug!(
            port,
            "database connection's socket not found; TCP_NODELAY not set"
        );
    }
    Ok(())
}

/// Calls `f` with each TCP socket of this process and its local and peer ports.
#[cfg(target_os = "linux")]
fn for_each_tcp_socket(mut f: impl FnMut(socket2::SockRef<'_>, u16, u16)) {
    use std::os::fd::{BorrowedFd, RawFd};
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // Only sockets: the link reads `socket:[inode]`.
        let is_socket = std::fs::read_link(entry.path()).is_ok_and(|target| {
            target
                .as_os_str()
                .as_encoded_bytes()
                .starts_with(b"socket:")
        });
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is only borrowed for socket-option calls and never closed
        // here. Should another thread close it and the number be reused meanwhile, the calls
        // reach another descriptor: the address calls fail on a non-socket, and NODELAY on
        // some other TCP connection is harmless.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let port = |a: std::io::Result<socket2::SockAddr>| a.ok()?.as_socket().map(|s| s.port());
        if let (Some(local), Some(peer)) = (port(socket.local_addr()), port(socket.peer_addr())) {
            f(socket, local, peer);
        }
    }
}

/// Elsewhere there is no portable way to list a process's descriptors; nothing is changed.
#[cfg(not(target_os = "linux"))]
fn for_each_tcp_socket(_: impl FnMut(socket2::SockRef<'_>, u16, u16)) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::store::testdb::TestDb;
    use std::collections::HashSet;

    #[tokio::test(flavor = "multi_thread")]
    async fn every_postgres_connection_has_nodelay() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        // Six connections held at once, so the pool has opened at least six; the server names
        // each one's client port, which picks out exactly these among the process's sockets
        // (other tests connect to the same server meanwhile).
        let pool = t.db.get_postgres_connection_pool();
        let server_port = pool.connect_options().get_port();
        let mut held = Vec::new();
        let mut ports = HashSet::new();
        for _ in 0..6 {
            let mut conn = pool.acquire().await.unwrap();
            let port: i32 = sea_orm::sqlx::query_scalar("SELECT inet_client_port()")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            ports.insert(port as u16);
            held.push(conn);
        }
        let mut nodelay = Vec::new();
        for_each_tcp_socket(|s, local, peer| {
            if peer == server_port && ports.contains(&local) {
                nodelay.push(s.tcp_nodelay().unwrap());
            }
        });
        assert_eq!(
            nodelay.len(),
            6,
            "found {} of our 6 connections",
            nodelay.len()
        );
        assert!(
            nodelay.iter().all(|&on| on),
            "NODELAY per connection: {nodelay:?}"
        );
        drop(held);
        t.remove().await;
    }
}
