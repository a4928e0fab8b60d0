//! A small synchronous rtnetlink client that sends requests in batches.
//!
//! The messages are built with `rtnetlink`'s builders (`LinkVeth`, `LinkVxlan`,
//! `RouteMessageBuilder`, ...) and the `netlink-packet-route` types; this module only moves
//! them. A batch is serialised into one buffer and handed to the kernel with one `send(2)`:
//! the kernel handles every message of the buffer, in order, inside that call (it is what
//! `ip -batch` does, minus the process). Only the last message of a chunk asks for an
//! acknowledgement; a failing message earlier in the chunk gets an error reply anyway, which
//! arrives before that acknowledgement, so a chunk costs one send and (when nothing fails) one
//! receive.
//!
//! The socket belongs to the network namespace of the thread that opened it, for good: open
//! it from a thread that joined the namespace ([`Rtnl::open_here`]).

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, connect, recv, send,
    socket,
};
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkBuffer,
    NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};

/// Flags for a request that creates something and must not find it already there.
pub const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL;
/// Flags for a request that creates or replaces (neighbour and FDB entries, as Felix's `NeighSet`).
pub const CREATE_OR_REPLACE: u16 = NLM_F_CREATE | NLM_F_REPLACE;
/// Flags for a request that changes something that exists.
pub const CHANGE: u16 = 0;

/// Sets NLM_F_ACK on the message that starts at `offset` of `chunk` (the flags are bytes 6..8
/// of `struct nlmsghdr`, in host order).
fn ask_ack(chunk: &mut [u8], offset: usize) {
    let at = offset + 6;
    if let Some(field) = chunk.get_mut(at..at + 2) {
        let flags = u16::from_ne_bytes([field[0], field[1]]) | NLM_F_ACK;
        field.copy_from_slice(&flags.to_ne_bytes());
    }
}

/// Bytes per `send(2)`: far below the socket's send buffer, so a chunk is never refused.
const CHUNK_BYTES: usize = 32 * 1024;
/// Receive buffer: large enough for any single datagram the kernel sends to us.
const RECV_BYTES: usize = 64 * 1024;

/// One request of a batch, with a description for error messages.
pub struct Request {
    message: RouteNetlinkMessage,
    flags: u16,
    what: String,
}

impl Request {
    /// A request with extra `flags` ([`CREATE`], [`CREATE_OR_REPLACE`], [`CHANGE`]) and a
    /// description such as `route 192.168.1.10/32 dev calid9d486e54a8`.
    pub fn new(message: RouteNetlinkMessage, flags: u16, what: impl Into<String>) -> Self {
        Request {
            message,
            flags,
            what: what.into(),
        }
    }
}

/// A NETLINK_ROUTE socket bound to one network namespace.
pub struct Rtnl {
    fd: OwnedFd,
    /// The place label used in errors (`k8s-worker-1`, `pod default/test-tools`).
    place: String,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn open_here(place: impl Into<String>) -> Result<Self> {
        let place = place.into();
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| Error::io(format!("{place}: opening a netlink socket"), e.into()))?;
        // Connect to the kernel (port 0), so plain send(2)/recv(2) work.
        connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| Error::io(format!("{place}: connecting a netlink socket"), e.into()))?;
        Ok(Rtnl {
            fd,
            place,
            seq: 1,
            buf: vec![0; RECV_BYTES],
        })
    }

    fn command_error(&self, what: &str, problem: impl std::fmt::Display) -> Error {
        Error::Command {
            place: self.place.clone(),
            command: format!("netlink: {what}"),
            problem: problem.to_string(),
        }
    }

    fn frame(&mut self, message: RouteNetlinkMessage, flags: u16) -> (u32, Vec<u8>) {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        msg.finalize();
        let len = msg.buffer_len();
        let mut bytes = vec![0u8; (len + 3) & !3];
        msg.serialize(&mut bytes[..len]);
        (seq, bytes)
    }

    fn send_all(&self, bytes: &[u8], what: &str) -> Result<()> {
        let n = send(self.fd.as_raw_fd(), bytes, MsgFlags::empty())
            .map_err(|e| self.command_error(what, std::io::Error::from(e)))?;
        if n != bytes.len() {
            return Err(self.command_error(what, format!("short send: {n} of {}", bytes.len())));
        }
        Ok(())
    }

    /// Receives one datagram and returns the messages in it.
    fn receive(&mut self, what: &str) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(self.command_error(what, std::io::Error::from(e))),
            }
        };
        let mut out = Vec::new();
        let mut off = 0;
        while off < n {
            let rest = &self.buf[off..n];
            let len = NetlinkBuffer::new_checked(rest)
                .map_err(|e| self.command_error(what, format!("bad reply: {e}")))?
                .length() as usize;
            if len == 0 || len > rest.len() {
                return Err(self.command_error(what, format!("bad reply length {len}")));
            }
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len])
                .map_err(|e| self.command_error(what, format!("bad reply: {e}")))?;
            out.push(msg);
            off += (len + 3) & !3;
        }
        Ok(out)
    }

    /// Sends `requests` in as few `send(2)` calls as fit, and fails with the first request
    /// the kernel refused (naming it and the place).
    pub fn batch(&mut self, requests: Vec<Request>) -> Result<()> {
        let mut pending: Vec<(u32, String)> = Vec::new();
        let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
        let mut last_offset = 0;
        let mut first_error: Option<Error> = None;
        for req in requests {
            let (seq, bytes) = self.frame(req.message, req.flags);
            if !chunk.is_empty() && chunk.len() + bytes.len() > CHUNK_BYTES {
                ask_ack(&mut chunk, last_offset);
                self.flush(&mut chunk, &mut pending, &mut first_error)?;
            }
            last_offset = chunk.len();
            chunk.extend_from_slice(&bytes);
            pending.push((seq, req.what));
        }
        if !chunk.is_empty() {
            ask_ack(&mut chunk, last_offset);
            self.flush(&mut chunk, &mut pending, &mut first_error)?;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends the buffered chunk, whose last message asked for an acknowledgement, and reads
    /// replies until that acknowledgement.
    fn flush(
        &mut self,
        buffer: &mut Vec<u8>,
        pending: &mut Vec<(u32, String)>,
        first_error: &mut Option<Error>,
    ) -> Result<()> {
        let Some((last_seq, last_what)) = pending.last().cloned() else {
            return Ok(());
        };
        self.send_all(buffer, &last_what)?;
        buffer.clear();
        'reading: loop {
            for msg in self.receive(&last_what)? {
                if let NetlinkPayload::Error(err) = &msg.payload {
                    let seq = msg.header.sequence_number;
                    if let (Some(code), None) = (err.code, first_error.as_ref()) {
                        let what = pending
                            .iter()
                            .find(|(s, _)| *s == seq)
                            .map(|(_, w)| w.clone())
                            .unwrap_or_else(|| format!("request #{seq}"));
                        *first_error = Some(self.command_error(
                            &what,
                            std::io::Error::from_raw_os_error(code.get().saturating_abs()),
                        ));
                    }
                    if seq == last_seq {
                        break 'reading;
                    }
                }
            }
        }
        pending.clear();
        Ok(())
    }

    /// Every link of the namespace, by name (one dump request).
    pub fn link_indices(&mut self) -> Result<HashMap<String, u32>> {
        let what = "dump links";
        let (seq, bytes) = self.frame(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        );
        self.send_all(&bytes, what)?;
        let mut out = HashMap::new();
        loop {
            for msg in self.receive(what)? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(self.command_error(what, e.to_io()));
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                        let name = link.attributes.iter().find_map(|a| match a {
                            LinkAttribute::IfName(n) => Some(n.clone()),
                            _ => None,
                        });
                        if let Some(name) = name {
                            out.insert(name, link.header.index);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The index of one link, by name (one request).
    pub fn link_index(&mut self, name: &str) -> Result<u32> {
        let what = format!("get link {name}");
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let (seq, bytes) = self.frame(RouteNetlinkMessage::GetLink(msg), 0);
        self.send_all(&bytes, &what)?;
        loop {
            for msg in self.receive(&what)? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return Err(self.command_error(&what, e.to_io()));
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                        return Ok(link.header.index);
                    }
                    _ => {}
                }
            }
        }
    }
}
