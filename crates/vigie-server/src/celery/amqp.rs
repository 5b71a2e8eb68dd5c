//! Just enough of AMQP 0-9-1 for Celery on RabbitMQ: a consumer of the `celeryev` topic
//! exchange, and broadcasts on `celery.pidbox`.
//!
//! ```text
//! connect amqp://user:password@host:5672/vhost ─► "AMQP\0\0\x09\x01"
//!   ◄ Connection.Start ─► Start-Ok (PLAIN)  ◄ Tune ─► Tune-Ok, Open ◄ Open-Ok
//!   ─► Channel.Open 1 ─► Exchange.Declare celeryev (topic, durable, as Celery declares it)
//!   ─► Queue.Declare vigie.celeryev.<random> (exclusive, auto-delete) ─► Bind # ─► Consume
//!   ◄ Basic.Deliver + content header (content type) + body frames, one message after another
//! ```
//!
//! Like the Redis client beside it, this is a loop over a few frame kinds rather than a
//! general client: no acknowledgements (the queue is Vigie's own and consumed with no-ack),
//! one consuming channel, heartbeats sent by a small task holding the writing half. A
//! broadcast goes on channel 2, in confirm mode, so each publish waits for the broker's
//! answer: a refusal (no workers yet: no `celery.pidbox` exchange) closes that channel only
//! and is told to the caller, and the next publish opens it again. Without the confirmation
//! a refused channel stayed closed unnoticed and every later broadcast vanished, so a Vigie
//! started before its workers never turned their events on.

use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use vigie_protocol::celery::control::{ReplyTo, REPLY_EXCHANGE};

/// Where a RabbitMQ broker is, from a Celery broker URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmqpUrl {
    pub host: String,
    pub port: u16,
    pub vhost: String,
    pub username: String,
    pub password: String,
}

impl AmqpUrl {
    /// `amqp://[user[:password]@]host[:port][/vhost]` (`pyamqp://` too); guest/guest and the
    /// vhost `/` when not given, as kombu reads it.
    pub fn parse(text: &str) -> Result<AmqpUrl, String> {
        let url = url::Url::parse(text).map_err(|e| format!("\"{text}\" is not a URL: {e}"))?;
        if !matches!(url.scheme(), "amqp" | "pyamqp") {
            return Err(format!("\"{text}\" is not an amqp:// URL"));
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("\"{text}\" has no host"))?
            .to_string();
        let vhost = decode(url.path().strip_prefix('/').unwrap_or(url.path()));
        Ok(AmqpUrl {
            host,
            port: url.port().unwrap_or(5672),
            vhost: if vhost.is_empty() { "/".into() } else { vhost },
            username: Some(decode(url.username()))
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "guest".into()),
            password: url.password().map(decode).unwrap_or_else(|| "guest".into()),
        })
    }

    /// The URL without its password, for logs and the System page.
    pub fn describe(&self) -> String {
        let vhost = if self.vhost == "/" { "/" } else { &self.vhost };
        format!(
            "amqp://{}@{}:{}/{vhost}",
            self.username, self.host, self.port
        )
    }
}

/// A message delivered to the consumer.
#[derive(Debug)]
pub struct Delivery {
    pub routing_key: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
/// The largest frame Vigie accepts and asks for.
const FRAME_MAX: u32 = 128 * 1024;
/// The largest message body kept: an event bigger than this is a mistake.
const BODY_MAX: u64 = 64 << 20;
const CONSUMER_CHANNEL: u16 = 1;
const BROADCAST_CHANNEL: u16 = 2;

/// One connection, consuming Celery's events.
pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// Silence after which the broker is taken for gone (twice its heartbeat).
    timeout: Option<Duration>,
    broadcast_open: bool,
    /// Frames of the consuming channel read while a publish waited for its confirmation (a
    /// worker's reply can come before it), handed out first by [`Connection::frame`].
    pending: std::collections::VecDeque<Frame>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
    }
}

/// A method frame's arguments, written field by field.
#[derive(Default)]
struct Args(Vec<u8>);

impl Args {
    fn method(class: u16, method: u16) -> Args {
        let mut a = Args::default();
        a.u16(class).u16(method);
        a
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn short(&mut self, s: &str) -> &mut Self {
        let bytes = &s.as_bytes()[..s.len().min(255)];
        self.u8(bytes.len() as u8);
        self.0.extend_from_slice(bytes);
        self
    }
    fn long(&mut self, s: &[u8]) -> &mut Self {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s);
        self
    }
    /// A field table of (name, value).
    fn table(&mut self, fields: &[(&str, Field)]) -> &mut Self {
        let mut t = Args::default();
        for (name, value) in fields {
            t.short(name);
            t.field(value);
        }
        self.long(&t.0)
    }

    /// A value of a field table or array, with its type tag (the tags RabbitMQ reads).
    fn field(&mut self, value: &Field) -> &mut Self {
        match value {
            Field::Text(s) => self.u8(b'S').long(s.as_bytes()),
            Field::Double(d) => self.u8(b'd').u64(d.to_bits()),
            Field::Int(i) => self.u8(b'l').u64(*i as u64),
            Field::Bool(b) => self.u8(b't').u8(u8::from(*b)),
            Field::Void => self.u8(b'V'),
            Field::Array(items) => {
                let mut a = Args::default();
                for item in items {
                    a.field(item);
                }
                self.u8(b'A').long(&a.0)
            }
            Field::Table(fields) => {
                let named: Vec<(&str, Field)> = fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                self.u8(b'F').table(&named)
            }
        }
    }
}

/// A value in a header table.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Text(String),
    Double(f64),
    Int(i64),
    Bool(bool),
    Void,
    Array(Vec<Field>),
    Table(Vec<(String, Field)>),
}

impl Field {
    /// A JSON value as AMQP carries it (Celery's task headers hold nulls, lists and maps).
    pub fn from_json(value: &serde_json::Value) -> Field {
        use serde_json::Value;
        match value {
            Value::Null => Field::Void,
            Value::Bool(b) => Field::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Field::Int(i),
                None => Field::Double(n.as_f64().unwrap_or_default()),
            },
            Value::String(s) => Field::Text(s.clone()),
            Value::Array(items) => Field::Array(items.iter().map(Field::from_json).collect()),
            Value::Object(map) => Field::Table(
                map.iter()
                    .map(|(k, v)| (k.clone(), Field::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Reads a method frame's arguments.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(bad("a frame ended early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn short(&mut self) -> io::Result<String> {
        let n = self.u8()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("amqp: {what}"))
}

/// A frame as read: its type, channel and payload.
struct Frame {
    kind: u8,
    channel: u16,
    payload: Vec<u8>,
}

impl Frame {
    fn method(&self) -> Option<(u16, u16, Reader<'_>)> {
        if self.kind != FRAME_METHOD || self.payload.len() < 4 {
            return None;
        }
        let class = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        let method = u16::from_be_bytes([self.payload[2], self.payload[3]]);
        Some((class, method, Reader(&self.payload[4..])))
    }
}

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(FRAME_END);
    out
}

impl Connection {
    /// Connects, logs in and opens the consuming channel.
    pub async fn open(url: &AmqpUrl) -> io::Result<Connection> {
        let stream = TcpStream::connect((url.host.as_str(), url.port)).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let mut c = Connection {
            reader: BufReader::new(read),
            writer: Arc::new(Mutex::new(write)),
            heartbeat: None,
            timeout: Some(Duration::from_secs(30)),
            broadcast_open: false,
            pending: Default::default(),
        };
        c.writer
            .lock()
            .await
            .write_all(b"AMQP\x00\x00\x09\x01")
            .await?;
        c.expect(0, (10, 10)).await?;
        let mut response = vec![0];
        response.extend_from_slice(url.username.as_bytes());
        response.push(0);
        response.extend_from_slice(url.password.as_bytes());
        let mut ok = Args::method(10, 11);
        ok.table(&[("product", Field::Text("Vigie".into()))])
            .short("PLAIN")
            .long(&response)
            .short("en_US");
        c.send(0, &ok).await?;
        // RabbitMQ answers a wrong password by closing the socket.
        let tune = c.expect(0, (10, 30)).await.map_err(|e| {
            let e = e.to_string();
            let e = e.strip_prefix("amqp: ").unwrap_or(&e);
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "amqp: login refused for {:?} ({e}): check the user and password",
                    url.username
                ),
            )
        })?;
        let mut args = Reader(&tune[4..]);
        let channel_max = args.u16()?;
        let frame_max = args.u32()?;
        let heartbeat = args.u16()?;
        let frame_max = if frame_max == 0 {
            FRAME_MAX
        } else {
            frame_max.min(FRAME_MAX)
        };
        let mut ok = Args::method(10, 31);
        ok.u16(channel_max).u32(frame_max).u16(heartbeat);
        c.send(0, &ok).await?;
        let mut open = Args::method(10, 40);
        open.short(&url.vhost).short("").u8(0);
        c.send(0, &open).await?;
        c.expect(0, (10, 41)).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{e} (is the vhost {:?} right?)", url.vhost),
            )
        })?;
        if heartbeat > 0 {
            let every = Duration::from_secs(heartbeat as u64);
            c.timeout = Some(every * 2);
            let writer = c.writer.clone();
            c.heartbeat = Some(tokio::spawn(async move {
                let beat = frame(FRAME_HEARTBEAT, 0, &[]);
                loop {
                    tokio::time::sleep(every / 2).await;
                    if writer.lock().await.write_all(&beat).await.is_err() {
                        return;
                    }
                }
            }));
        } else {
            c.timeout = None;
        }
        let mut open = Args::method(20, 10);
        open.short("");
        c.send(CONSUMER_CHANNEL, &open).await?;
        c.expect(CONSUMER_CHANNEL, (20, 11)).await?;
        Ok(c)
    }

    /// Declares Celery's `celeryev` exchange as Celery does, an exclusive auto-delete queue
    /// bound to every routing key, and consumes it without acknowledgements.
    pub async fn consume_events(&mut self) -> io::Result<String> {
        let queue = format!("vigie.celeryev.{}", vigie_core::secret::random_hex(8));
        self.consume(("celeryev", "topic", true), &queue, "#")
            .await?;
        Ok(queue)
    }

    /// Consumes the replies to a remote-control call: kombu's `reply.celery.pidbox` direct
    /// exchange, declared as kombu declares it (workers declare it too before replying), and a
    /// queue of the call's own bound with its routing key.
    pub async fn consume_replies(&mut self, reply: &ReplyTo) -> io::Result<()> {
        self.consume(
            (REPLY_EXCHANGE, "direct", false),
            &reply.queue(),
            &reply.routing_key,
        )
        .await
    }

    /// Declares `exchange` (name, type, durable), an exclusive auto-delete `queue` bound to it
    /// with `routing_key`, and consumes the queue without acknowledgements.
    async fn consume(
        &mut self,
        (exchange, kind, durable): (&str, &str, bool),
        queue: &str,
        routing_key: &str,
    ) -> io::Result<()> {
        let mut declare = Args::method(40, 10);
        // passive 0, durable, auto-delete 0, internal 0, no-wait 0.
        declare
            .u16(0)
            .short(exchange)
            .short(kind)
            .u8(u8::from(durable) << 1)
            .table(&[]);
        self.send(CONSUMER_CHANNEL, &declare).await?;
        self.expect(CONSUMER_CHANNEL, (40, 11)).await?;
        let mut declare = Args::method(50, 10);
        // passive 0, durable 0, exclusive 1, auto-delete 1, no-wait 0.
        declare.u16(0).short(queue).u8(0b0000_1100).table(&[]);
        self.send(CONSUMER_CHANNEL, &declare).await?;
        self.expect(CONSUMER_CHANNEL, (50, 11)).await?;
        let mut bind = Args::method(50, 20);
        bind.u16(0)
            .short(queue)
            .short(exchange)
            .short(routing_key)
            .u8(0)
            .table(&[]);
        self.send(CONSUMER_CHANNEL, &bind).await?;
        self.expect(CONSUMER_CHANNEL, (50, 21)).await?;
        let mut consume = Args::method(60, 20);
        // no-local 0, no-ack 1, exclusive 1, no-wait 0.
        consume
            .u16(0)
            .short(queue)
            .short("vigie")
            .u8(0b0000_0110)
            .table(&[]);
        self.send(CONSUMER_CHANNEL, &consume).await?;
        self.expect(CONSUMER_CHANNEL, (60, 21)).await?;
        Ok(())
    }

    /// Drops every message waiting in `queue`; how many were dropped, `None` when the broker
    /// has no such queue.
    pub async fn purge(&mut self, queue: &str) -> io::Result<Option<u64>> {
        let mut purge = Args::method(50, 30);
        purge.u16(0).short(queue).u8(0);
        self.send(CONSUMER_CHANNEL, &purge).await?;
        match self.expect(CONSUMER_CHANNEL, (50, 31)).await {
            Ok(payload) => Ok(Some(Reader(&payload[4..]).u32()? as u64)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                self.reopen_consumer_channel().await?;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// Opens the consuming channel again after the broker closed it over a missing queue.
    async fn reopen_consumer_channel(&mut self) -> io::Result<()> {
        let mut open = Args::method(20, 10);
        open.short("");
        self.send(CONSUMER_CHANNEL, &open).await?;
        self.expect(CONSUMER_CHANNEL, (20, 11)).await?;
        Ok(())
    }

    /// How many messages wait in `queue`; `None` when the broker has no such queue.
    pub async fn queue_length(&mut self, queue: &str) -> io::Result<Option<i64>> {
        let mut declare = Args::method(50, 10);
        // passive 1: only asks.
        declare.u16(0).short(queue).u8(0b0000_0001).table(&[]);
        self.send(CONSUMER_CHANNEL, &declare).await?;
        match self.expect(CONSUMER_CHANNEL, (50, 11)).await {
            Ok(payload) => {
                let mut args = Reader(&payload[4..]);
                args.short()?;
                Ok(Some(args.u32()? as i64))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // The broker closed the channel over it: open it again.
                self.reopen_consumer_channel().await?;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// The next message on the consuming channel.
    pub async fn next_delivery(&mut self) -> io::Result<Delivery> {
        loop {
            let f = self.frame().await?;
            let Some((60, 60, mut args)) = f.method() else {
                continue;
            };
            args.short()?; // consumer tag
            args.u64()?; // delivery tag
            args.u8()?; // redelivered
            args.short()?; // exchange
            let routing_key = args.short()?;
            let header = self.frame().await?;
            if header.kind != FRAME_HEADER {
                return Err(bad("a delivery without its content header"));
            }
            let mut h = Reader(&header.payload);
            h.u16()?; // class
            h.u16()?; // weight
            let size = h.u64()?;
            let flags = h.u16()?;
            let content_type = if flags & 0x8000 != 0 {
                h.short()?
            } else {
                String::new()
            };
            if size > BODY_MAX {
                return Err(bad(&format!("a {size}-byte message")));
            }
            let mut body = Vec::with_capacity(size as usize);
            while (body.len() as u64) < size {
                let part = self.frame().await?;
                if part.kind != FRAME_BODY {
                    return Err(bad("a message body cut short"));
                }
                body.extend_from_slice(&part.payload);
            }
            return Ok(Delivery {
                routing_key,
                content_type,
                body,
            });
        }
    }

    /// Publishes `body` (JSON) on `exchange` with `routing_key`, on a channel apart from the
    /// consumer's; for broadcasts kombu's pidbox reads (`headers` say when the command
    /// expires) and for tests.
    pub async fn publish(
        &mut self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: &[(&str, Field)],
    ) -> io::Result<()> {
        if !self.broadcast_open {
            let mut open = Args::method(20, 10);
            open.short("");
            self.send(BROADCAST_CHANNEL, &open).await?;
            self.expect(BROADCAST_CHANNEL, (20, 11)).await?;
            // Confirm.Select, so the broker answers each publish (Basic.Ack) or refuses it.
            let mut confirm = Args::method(85, 10);
            confirm.u8(0);
            self.send(BROADCAST_CHANNEL, &confirm).await?;
            self.expect(BROADCAST_CHANNEL, (85, 11)).await?;
            self.broadcast_open = true;
        }
        let mut publish = Args::method(60, 40);
        publish.u16(0).short(exchange).short(routing_key).u8(0);
        let mut header = Args::default();
        header.u16(60).u16(0).u64(body.len() as u64);
        // content-type, content-encoding, headers, delivery-mode.
        header.u16(0xF000).short("application/json").short("utf-8");
        header.table(headers);
        header.u8(1);
        let mut out = frame(FRAME_METHOD, BROADCAST_CHANNEL, &publish.0);
        out.extend(frame(FRAME_HEADER, BROADCAST_CHANNEL, &header.0));
        for chunk in body.chunks(FRAME_MAX as usize - 8) {
            out.extend(frame(FRAME_BODY, BROADCAST_CHANNEL, chunk));
        }
        self.writer.lock().await.write_all(&out).await?;
        loop {
            let f = self.fresh_frame().await?;
            if f.channel != BROADCAST_CHANNEL {
                self.pending.push_back(f);
                continue;
            }
            match f.method() {
                Some((60, 80, _)) => return Ok(()),
                Some((60, 120, _)) => {
                    return Err(io::Error::other(
                        "amqp: the broker did not take the message",
                    ))
                }
                _ => {}
            }
        }
    }

    async fn send(&self, channel: u16, args: &Args) -> io::Result<()> {
        self.writer
            .lock()
            .await
            .write_all(&frame(FRAME_METHOD, channel, &args.0))
            .await
    }

    /// Waits for `method` on `channel`; a close from the broker is an error with its reason.
    async fn expect(&mut self, channel: u16, method: (u16, u16)) -> io::Result<Vec<u8>> {
        loop {
            let f = self.frame().await?;
            if let Some((class, m, _)) = f.method() {
                if f.channel == channel && (class, m) == method {
                    return Ok(f.payload);
                }
            }
        }
    }

    /// The next frame: one kept aside while a publish waited, else [`Self::fresh_frame`].
    async fn frame(&mut self) -> io::Result<Frame> {
        match self.pending.pop_front() {
            Some(f) => Ok(f),
            None => self.fresh_frame().await,
        }
    }

    /// Reads the next frame from the socket, answering heartbeats and closes on the way.
    async fn fresh_frame(&mut self) -> io::Result<Frame> {
        loop {
            let read = read_frame(&mut self.reader);
            let f = match self.timeout {
                Some(limit) => tokio::time::timeout(limit, read)
                    .await
                    .map_err(|_| bad("the broker went silent (no heartbeat)"))??,
                None => read.await?,
            };
            match f.method() {
                Some((10, 50, mut args)) => {
                    let code = args.u16()?;
                    let text = args.short()?;
                    let _ = self.send(0, &Args::method(10, 51)).await;
                    return Err(io::Error::other(format!(
                        "amqp: the broker closed the connection: {code} {text}"
                    )));
                }
                Some((20, 40, mut args)) => {
                    let code = args.u16()?;
                    let text = args.short()?;
                    let _ = self.send(f.channel, &Args::method(20, 41)).await;
                    if f.channel == BROADCAST_CHANNEL {
                        self.broadcast_open = false;
                    }
                    let kind = if code == 404 {
                        io::ErrorKind::NotFound
                    } else {
                        io::ErrorKind::Other
                    };
                    return Err(io::Error::new(
                        kind,
                        format!("amqp: the broker closed the channel: {code} {text}"),
                    ));
                }
                _ if f.kind == FRAME_HEARTBEAT => {}
                _ => return Ok(f),
            }
        }
    }
}

async fn read_frame(reader: &mut BufReader<OwnedReadHalf>) -> io::Result<Frame> {
    let mut head = [0u8; 7];
    reader
        .read_exact(&mut head)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                io::Error::new(e.kind(), "amqp: the broker closed the connection")
            }
            _ => e,
        })?;
    if &head[..4] == b"AMQP" {
        return Err(bad("the broker does not speak AMQP 0-9-1"));
    }
    let kind = head[0];
    let channel = u16::from_be_bytes([head[1], head[2]]);
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
    if size > FRAME_MAX * 2 {
        return Err(bad(&format!("a {size}-byte frame")));
    }
    let mut payload = vec![0; size as usize + 1];
    reader.read_exact(&mut payload).await?;
    if payload.pop() != Some(FRAME_END) {
        return Err(bad("a frame without its end marker"));
    }
    Ok(Frame {
        kind,
        channel,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let url = AmqpUrl::parse("amqp://app:s%40cret@rabbit:5673/shop").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.vhost.as_str(),
                url.username.as_str(),
                url.password.as_str()
            ),
            ("rabbit", 5673, "shop", "app", "s@cret")
        );
        assert_eq!(url.describe(), "amqp://app@rabbit:5673/shop");
        let default = AmqpUrl::parse("amqp://localhost//").unwrap();
        assert_eq!(
            (
                default.vhost.as_str(),
                default.username.as_str(),
                default.port
            ),
            ("/", "guest", 5672)
        );
        assert_eq!(AmqpUrl::parse("pyamqp://h").unwrap().vhost, "/");
        assert!(AmqpUrl::parse("redis://h").is_err());
    }

    #[test]
    fn frames_carry_their_size_and_end() {
        let mut a = Args::method(10, 40);
        a.short("/").short("").u8(0);
        let f = frame(FRAME_METHOD, 0, &a.0);
        assert_eq!(f[0], FRAME_METHOD);
        assert_eq!(
            u32::from_be_bytes([f[3], f[4], f[5], f[6]]) as usize,
            a.0.len()
        );
        assert_eq!(*f.last().unwrap(), FRAME_END);
        let mut r = Reader(&a.0[4..]);
        assert_eq!(r.short().unwrap(), "/");
        assert!(
            Reader(&[3, b'a']).short().is_err(),
            "a short string past the end"
        );
    }
}
