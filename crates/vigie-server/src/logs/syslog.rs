//! The syslog listeners, UDP and TCP, off unless `logs.syslog_udp` / `logs.syslog_tcp` are set.
//!
//! Messages are parsed by `vigie_protocol::logs::syslog` and handed to the sink in small
//! batches (every [`BATCH`] records or [`LINGER`], whichever comes first). UDP never waits:
//! what storage cannot take is dropped and counted (`vigie_logs_dropped_total`), as syslog
//! over UDP always allowed. TCP waits, which slows that sender down instead of losing lines.

use super::LogSink;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use vigie_core::time::now_ns;
use vigie_core::{LogRecord, ProjectId};
use vigie_protocol::logs::syslog::{self, Framer};

const BATCH: usize = 2048;
const LINGER: Duration = Duration::from_millis(50);

/// Receives datagrams on `socket` until the task is dropped.
/// Receive buffer asked of the kernel for the UDP socket: a burst waits here while the sink
/// catches up. Linux grants at most twice `net.core.rmem_max`; raise that to keep more.
const UDP_RECEIVE_BUFFER: usize = 8 << 20;

/// Binds the UDP listener with a large receive buffer (the default holds only ~200 KiB, about
/// a thousand datagrams).
pub fn bind_udp(addr: std::net::SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    // Best effort: a smaller buffer than asked still works.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

pub async fn serve_udp(socket: UdpSocket, sink: LogSink, project: ProjectId) {
    let mut buf = vec![0u8; 65_536];
    let mut batch: Vec<LogRecord> = Vec::new();
    loop {
        let received = if batch.is_empty() {
            socket.recv_from(&mut buf).await.ok()
        } else {
            match tokio::time::timeout(LINGER, socket.recv_from(&mut buf)).await {
                Ok(r) => r.ok(),
                Err(_) => None,
            }
        };
        if let Some((n, _)) = received {
            batch.push(syslog::parse(&buf[..n], now_ns()));
        }
        if batch.len() >= BATCH || (received.is_none() && !batch.is_empty()) {
            sink.offer(project, std::mem::take(&mut batch), false).await;
        }
    }
}

/// Accepts connections on `listener`; each is read on its own task.
pub async fn serve_tcp(listener: TcpListener, sink: LogSink, project: ProjectId) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        tracing::debug!(%peer, "syslog connection");
        tokio::spawn(read_stream(stream, sink.clone(), project));
    }
}

async fn read_stream(mut stream: tokio::net::TcpStream, sink: LogSink, project: ProjectId) {
    let mut framer = Framer::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut batch: Vec<LogRecord> = Vec::new();
    loop {
        let read = if batch.is_empty() {
            stream.read(&mut buf).await
        } else {
            match tokio::time::timeout(LINGER, stream.read(&mut buf)).await {
                Ok(r) => r,
                Err(_) => {
                    sink.offer(project, std::mem::take(&mut batch), true).await;
                    continue;
                }
            }
        };
        match read {
            Ok(0) | Err(_) => {
                framer.finish(|frame| batch.push(syslog::parse(frame, now_ns())));
                sink.offer(project, batch, true).await;
                return;
            }
            Ok(n) => framer.push(&buf[..n], |frame| {
                batch.push(syslog::parse(frame, now_ns()))
            }),
        }
        if batch.len() >= BATCH {
            sink.offer(project, std::mem::take(&mut batch), true).await;
        }
    }
}
