//! Listening sockets for the HTTP servers of the controllers.

use axum::serve::{ListenerExt as _, TapIo};
use tokio::net::{TcpListener, TcpStream};

/// A listener whose accepted connections have Nagle's algorithm turned off.
pub type NoDelayListener = TapIo<TcpListener, fn(&mut TcpStream)>;

/// Wraps `listener` so every accepted connection sets `TCP_NODELAY`.
///
/// Hyper writes a response's head and its body (or a streamed body's chunks) in separate
/// writes. With Nagle's algorithm on, a small write that follows another waits for the
/// peer's acknowledgement, and a peer that delays its acknowledgements (Linux does, by up
/// to 40 ms) adds that delay to the response: measured on loopback, a Git ref listing went
/// from 10 ms to 50 ms that way. Serve with `axum::serve(no_delay(listener), router)`.
pub fn no_delay(listener: TcpListener) -> NoDelayListener {
    listener.tap_io(set_no_delay as fn(&mut TcpStream))
}

fn set_no_delay(stream: &mut TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "cannot set TCP_NODELAY on an accepted connection");
    }
}
