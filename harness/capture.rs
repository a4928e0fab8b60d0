//! Packet captures that are live before the traffic starts and stop as soon as the expected
//! frames are seen or a deadline passes.
//!
//! Two sources feed one [`Capture`]: a native `AF_PACKET` socket opened inside a local network
//! namespace (lab and topology targets: no tcpdump needed), and a `tcpdump -U -w -` pcap stream
//! (kube target, through the node probe). Either way the frames are kept as pcap records and
//! parsed by the one parser in [`crate::observe::packet`], and the raw pcap is kept as evidence.

use crate::error::{Error, Result};
use crate::observe::packet::{self, DataLink, Frame, PcapStreamReader};
use futures::future::BoxFuture;
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, LinkAddr, SockFlag, SockType, SockaddrLike, sockopt};
use nix::sys::time::{TimeVal, TimeValLike};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;

/// How often waiting code looks at the frames when nothing wakes it.
const POLL: Duration = Duration::from_millis(20);

#[derive(Default)]
struct State {
    linktype: Option<DataLink>,
    records: Vec<(Duration, Vec<u8>)>,
    /// Why the source ended before it was stopped (a dead tcpdump, a read error).
    ended: Option<String>,
    /// Set once `stop` has begun: the end of the stream is then expected.
    stopping: bool,
}

/// Ends a streaming capture's producer (kills the remote tcpdump).
pub type StreamStop = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send + Sync>;

enum Source {
    Native {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
    Stream {
        stop: Option<StreamStop>,
        task: Option<tokio::task::JoinHandle<()>>,
    },
}

/// A running capture on one interface of one place.
pub struct Capture {
    label: String,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    source: Source,
}

/// What a stopped capture saw.
#[derive(Debug, Clone)]
pub struct CaptureResult {
    /// `<place> <iface>`.
    pub label: String,
    pub frames: Vec<Frame>,
    /// The capture as a pcap file, for evidence.
    pub pcap: Vec<u8>,
    /// Set when the capture's source died early: its "nothing seen" proves nothing.
    pub ended_early: Option<String>,
}

impl Capture {
    /// Starts capturing on `iface` in the local namespace `netns` (an AF_PACKET socket opened
    /// inside it, read by a thread) and returns once the capture is live.
    pub fn native(place_label: &str, netns: &std::path::Path, iface: &str) -> Result<Capture> {
        let label = format!("{place_label} {iface}");
        let name = iface.to_string();
        let (fd, is_loopback) = crate::netns::in_netns(netns, move || open_packet_socket(&name))?;
        let state = Arc::new(Mutex::new(State::default()));
        let notify = Arc::new(Notify::new());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let notify = notify.clone();
            let stop = stop.clone();
            let label = label.clone();
            std::thread::Builder::new()
                .name(format!("capture {label}"))
                .spawn(move || read_packets(fd, is_loopback, &state, &notify, &stop))
                .map_err(|e| Error::io(format!("starting the capture thread for {label}"), e))?
        };
        Ok(Capture {
            label,
            state,
            notify,
            source: Source::Native {
                stop,
                thread: Some(thread),
            },
        })
    }

    /// A capture fed by a pcap byte stream (`tcpdump -U -w -` over an exec). The caller has
    /// already made sure the capture is live. `stop` ends the producer.
    pub fn from_pcap_stream<R>(label: String, iface: String, stream: R, stop: StreamStop) -> Capture
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let label = format!("{label} {iface}");
        let state = Arc::new(Mutex::new(State::default()));
        let notify = Arc::new(Notify::new());
        let task = {
            let state = state.clone();
            let notify = notify.clone();
            tokio::spawn(async move { read_pcap_stream(stream, &state, &notify).await })
        };
        Capture {
            label,
            state,
            notify,
            source: Source::Stream {
                stop: Some(stop),
                task: Some(task),
            },
        }
    }

    /// `<place> <iface>`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The frames seen so far.
    pub fn frames(&self) -> Vec<Frame> {
        let state = lock(&self.state);
        let linktype = state.linktype.unwrap_or(DataLink::ETHERNET);
        state
            .records
            .iter()
            .filter_map(|(ts, data)| packet::parse_frame(linktype, *ts, data))
            .collect()
    }

    /// Waits until `seen(frames)` holds or `deadline` passes; true when it held. Returns early
    /// (false) when the capture's source died.
    pub async fn wait_for(&self, deadline: Duration, seen: impl Fn(&[Frame]) -> bool) -> bool {
        let started = Instant::now();
        loop {
            let notified = self.notify.notified();
            if seen(&self.frames()) {
                return true;
            }
            if lock(&self.state).ended.is_some() {
                return false;
            }
            let left = deadline.saturating_sub(started.elapsed());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(left.min(POLL * 10), notified).await;
        }
    }

    /// Stops the capture and returns everything it saw.
    pub async fn stop(mut self) -> CaptureResult {
        lock(&self.state).stopping = true;
        match &mut self.source {
            Source::Native { stop, thread } => {
                stop.store(true, Ordering::SeqCst);
                if let Some(t) = thread.take() {
                    let _ = tokio::task::spawn_blocking(move || t.join()).await;
                }
            }
            Source::Stream { stop, task } => {
                if let Some(stop) = stop.take() {
                    stop().await;
                }
                if let Some(task) = task.take() {
                    // The producer ends once stopped; never wait on it without a deadline.
                    if tokio::time::timeout(Duration::from_secs(5), task)
                        .await
                        .is_err()
                    {
                        lock(&self.state).ended.get_or_insert_with(|| {
                            "the capture stream did not end within 5 s of being stopped".into()
                        });
                    }
                }
            }
        }
        let frames = self.frames();
        let state = lock(&self.state);
        let linktype = state.linktype.unwrap_or(DataLink::ETHERNET);
        CaptureResult {
            label: self.label.clone(),
            frames,
            pcap: packet::write_pcap(linktype, &state.records),
            ended_early: state.ended.clone(),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        match &mut self.source {
            Source::Native { stop, .. } => stop.store(true, Ordering::SeqCst),
            Source::Stream { stop, task } => {
                if let Some(task) = task.take() {
                    task.abort();
                }
                if let Some(stop) = stop.take()
                    && let Ok(handle) = tokio::runtime::Handle::try_current()
                {
                    handle.spawn(stop());
                }
            }
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Opens an AF_PACKET socket bound to `iface` in the current thread's namespace, with a 20 ms
/// receive timeout (so the reading thread sees the stop flag) and a 4 MiB receive buffer.
/// Returns the socket and whether the interface is a loopback.
fn open_packet_socket(iface: &str) -> Result<(OwnedFd, bool)> {
    let ifindex = nix::net::if_::if_nametoindex(iface)
        .map_err(|e| Error::NotFound(format!("interface {iface}: not in this namespace ({e})")))?;
    let fail = |what: &str, e: Errno| {
        Error::io(
            format!("{what} the packet socket for {iface}"),
            std::io::Error::from(e),
        )
    };
    // Protocol 0 receives nothing until bound, so no frame of another interface slips in.
    let fd = socket::socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| fail("opening", e))?;
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
        sll_ifindex: i32::try_from(ifindex).map_err(|_| {
            Error::NotFound(format!("interface {iface}: index {ifindex} out of range"))
        })?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a live, fully initialised sockaddr_ll and the length passed is its size;
    // `from_raw` copies it and checks its family. nix has no safe constructor for a `LinkAddr`
    // to bind to (it only hands them out from `recvfrom`).
    let addr = unsafe {
        LinkAddr::from_raw(
            (&raw const sll).cast(),
            Some(std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t),
        )
    }
    .ok_or_else(|| fail("building the address of", Errno::EINVAL))?;
    socket::bind(fd.as_raw_fd(), &addr).map_err(|e| fail("binding", e))?;
    socket::setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::milliseconds(20))
        .map_err(|e| fail("setting SO_RCVTIMEO (20 ms) on", e))?;
    socket::setsockopt(&fd, sockopt::RcvBuf, &(4 << 20))
        .map_err(|e| fail("setting SO_RCVBUF (4 MiB) on", e))?;
    let is_loopback = iface == "lo";
    Ok((fd, is_loopback))
}

fn read_packets(
    fd: OwnedFd,
    is_loopback: bool,
    state: &Mutex<State>,
    notify: &Notify,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65536 + 64];
    while !stop.load(Ordering::SeqCst) {
        let (n, from) = match socket::recvfrom::<LinkAddr>(fd.as_raw_fd(), &mut buf) {
            Ok(received) => received,
            // The receive timeout: look at the stop flag again.
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => {
                lock(state).ended = Some(format!("reading packets failed: {e}"));
                notify.notify_waiters();
                return;
            }
        };
        let (pkttype, hatype) = from.map_or((libc::PACKET_HOST, libc::ARPHRD_ETHER), |a| {
            (a.pkttype(), a.hatype())
        });
        // libpcap does the same: on loopback every packet is seen leaving and arriving.
        if is_loopback && pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        let linktype = match hatype {
            libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => DataLink::ETHERNET,
            _ => DataLink::RAW,
        };
        let mut s = lock(state);
        s.linktype.get_or_insert(linktype);
        s.records.push((now(), buf[..n].to_vec()));
        drop(s);
        notify.notify_waiters();
    }
}

/// Reads a classic pcap stream into `state` as it arrives: each record is visible as soon as its
/// last byte is in; a partial one waits for the rest.
async fn read_pcap_stream<R: AsyncRead + Unpin>(
    mut stream: R,
    state: &Mutex<State>,
    notify: &Notify,
) {
    let mut reader = PcapStreamReader::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) => {
                let mut s = lock(state);
                if !s.stopping {
                    s.ended = Some(match reader.end_problem() {
                        Some(problem) if reader.pending() > 0 => {
                            format!("the pcap stream ended inside a record: {problem}")
                        }
                        _ => "the capture stream ended before the capture was stopped".to_string(),
                    });
                }
                drop(s);
                notify.notify_waiters();
                return;
            }
            Ok(n) => n,
            Err(e) => {
                lock(state).ended = Some(format!("reading the pcap stream failed: {e}"));
                notify.notify_waiters();
                return;
            }
        };
        let pushed = reader.push(&chunk[..n]);
        let mut s = lock(state);
        if s.linktype.is_none() {
            s.linktype = reader.linktype();
        }
        match pushed {
            Ok(records) => s.records.extend(records),
            Err(problem) => {
                s.ended = Some(format!("the capture stream: {problem}"));
                drop(s);
                notify.notify_waiters();
                return;
            }
        }
        drop(s);
        notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pcap_stream_read_in_small_pieces_gives_every_record() {
        let bytes =
            crate::fixtures::read_bytes("recorded/node/pcap-calied9d42cb137-arp-ping-http.pcap");
        let whole = packet::parse_pcap("fixture", &bytes).expect("fixture parses");
        // A reader that hands out 7 bytes at a time, as a slow exec stream might.
        let (mut tx, rx) = tokio::io::duplex(7);
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let feeder = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in bytes.chunks(7) {
                if tx.write_all(piece).await.is_err() {
                    break;
                }
            }
            // Keep the stream open, as a live tcpdump does, until the capture is stopped.
            let _ = stopped_rx.await;
            drop(tx);
        });
        let cap = Capture::from_pcap_stream(
            "fixture".into(),
            "eth0".into(),
            rx,
            Box::new(move || {
                Box::pin(async move {
                    let _ = stopped_tx.send(());
                })
            }),
        );
        assert!(
            cap.wait_for(Duration::from_secs(5), |f| f.len() == whole.len())
                .await
        );
        let result = cap.stop().await;
        feeder.await.expect("feeder");
        assert_eq!(result.frames, whole);
        assert!(result.ended_early.is_none());
    }

    #[tokio::test]
    async fn a_stream_that_is_not_pcap_ends_the_capture_with_a_reason() {
        let cap = Capture::from_pcap_stream(
            "bogus".into(),
            "eth9".into(),
            std::io::Cursor::new(b"tcpdump: eth9: No such device exists\n".to_vec()),
            Box::new(|| Box::pin(async {})),
        );
        assert!(
            !cap.wait_for(Duration::from_secs(2), |f| !f.is_empty())
                .await
        );
        let result = cap.stop().await;
        assert!(
            result
                .ended_early
                .unwrap_or_default()
                .contains("not a pcap file")
        );
    }
}
