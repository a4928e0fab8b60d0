# calico-conformance's watch agent: what `watch` runs on a cluster, where it cannot probe from
# this machine. It runs with python3 in the node probe (the probe image has it), entered into a
# pod's network namespace with nsenter, so it probes from the pod itself, clocked by the node:
#
#   python3 -c <this> serve IP PORT SECONDS
#       an echo server on PORT of IP's family (every address of the pod): every byte it reads
#       it writes back; a thread per connection; prints "serving" on stderr once bound, or
#       why it cannot and exits 3; ends after SECONDS.
#   python3 -c <this> probe IP PORT INTERVAL SECONDS
#       every INTERVAL, three probes of IP, each on its own clock: an ICMP echo (raw socket),
#       a TCP request (a new connection to IP:PORT, one byte there and back) and one byte over
#       one long-lived connection to IP:PORT, re-attached once per interval when it is lost.
#       A probe not answered within its interval is lost, never waited for. One JSON line per
#       probe on stdout as it happens ({"k": "icmp", "seq": 3, "t": <epoch sent>, "rtt": <ms>}
#       or "err" instead of "rtt"), and events: {"ev": "start", "t": <epoch>} first,
#       {"ev": "lost", "t", "why"}, {"ev": "reconnected", "t"}, {"ev": "fatal", "why"}.
#
# Both print their PID on stderr first (the PID the suite kills to stop them early). No
# dependency beyond python3's standard library.
import json, os, select, socket, struct, sys, threading, time

print(os.getpid(), file=sys.stderr, flush=True)
OUT = threading.Lock()


def emit(obj):
    line = json.dumps(obj)
    with OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def family(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def serve(ip, port, seconds):
    fam = family(ip)
    try:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port))
        s.listen(64)
    except OSError as e:
        print("cannot serve %s:%d: %s" % (ip, port, e), file=sys.stderr, flush=True)
        sys.exit(3)
    socks = [s]
    print("serving", file=sys.stderr, flush=True)

    def echo(c):
        try:
            while True:
                data = c.recv(4096)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()

    until = time.monotonic() + seconds
    while time.monotonic() < until:
        ready, _, _ = select.select(socks, [], [], 0.2)
        for s in ready:
            try:
                c, _ = s.accept()
            except OSError:
                continue
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=echo, args=(c,), daemon=True).start()


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class Icmp:
    def __init__(self, ip):
        self.ip, self.v6 = ip, ":" in ip
        if self.v6:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.ident = os.getpid() & 0xFFFF

    def probe(self, seq, deadline):
        seq &= 0xFFFF
        kind = 128 if self.v6 else 8
        header = struct.pack("!BBHHH", kind, 0, 0, self.ident, seq)
        payload = b"calico-conformance watch"
        packet = header + payload
        if not self.v6:  # the kernel computes ICMPv6's checksum itself
            packet = struct.pack("!BBHHH", kind, 0, checksum(packet), self.ident, seq) + payload
        self.sock.sendto(packet, (self.ip, 0))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "no echo reply within the interval"
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return "no echo reply within the interval"
            data, addr = self.sock.recvfrom(2048)
            if addr[0] != self.ip and not (self.v6 and addr[0].split("%")[0] == self.ip):
                continue
            icmp = data if self.v6 else data[(data[0] & 0x0F) * 4:]
            if len(icmp) < 8:
                continue
            t, _, _, ident, rseq = struct.unpack("!BBHHH", icmp[:8])
            if t == (129 if self.v6 else 0) and ident == self.ident and rseq == seq:
                return None


def connect(ip, port, timeout):
    s = socket.socket(family(ip), socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((ip, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(s, byte, deadline):
    """Sends `byte` and reads until it comes back: None when it did, a reason when not."""
    s.settimeout(max(deadline - time.monotonic(), 0.001))
    s.sendall(bytes([byte]))
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "no echo within the interval"
        s.settimeout(left)
        try:
            data = s.recv(4096)
        except socket.timeout:
            return "no echo within the interval"
        if not data:
            raise ConnectionError("the connection was closed by the server")
        if byte in data:
            return None


def ticks(interval, seconds, start):
    """Yields (seq, deadline) once per interval, skipping ticks already missed."""
    seq = 0
    until = start + seconds
    while True:
        at = start + seq * interval
        if at >= until:
            return
        now = time.monotonic()
        if at > now:
            time.sleep(at - now)
        elif now - at >= interval:
            seq = int((now - start) // interval)
            continue
        yield seq, at + interval
        seq += 1


def record(kind, seq, sent_wall, sent, error):
    obj = {"k": kind, "seq": seq, "t": sent_wall}
    if error is None:
        obj["rtt"] = (time.monotonic() - sent) * 1000.0
    else:
        obj["err"] = error
    emit(obj)


def icmp_loop(ip, interval, seconds, start):
    icmp = Icmp(ip)
    for seq, deadline in ticks(interval, seconds, start):
        sent_wall, sent = time.time(), time.monotonic()
        try:
            error = icmp.probe(seq, deadline)
        except OSError as e:
            error = str(e)
        record("icmp", seq, sent_wall, sent, error)


def request_loop(ip, port, interval, seconds, start):
    for seq, deadline in ticks(interval, seconds, start):
        sent_wall, sent = time.time(), time.monotonic()
        try:
            s = connect(ip, port, interval)
            try:
                error = exchange(s, 1, deadline)
            finally:
                s.close()
        except socket.timeout:
            error = "no answer within the interval"
        except OSError as e:
            error = str(e)
        record("tcp", seq, sent_wall, sent, error)


def long_loop(ip, port, interval, seconds, start, conn):
    for seq, deadline in ticks(interval, seconds, start):
        sent_wall, sent = time.time(), time.monotonic()
        byte = seq % 256
        if conn is None:
            try:
                conn = connect(ip, port, max(deadline - time.monotonic(), 0.001))
                emit({"ev": "reconnected", "t": sent_wall})
                error = exchange(conn, byte, deadline)
            except socket.timeout:
                conn, error = None, "reconnecting: no answer within the interval"
            except OSError as e:
                conn, error = None, "reconnecting: %s" % e
            record("long", seq, sent_wall, sent, error)
            continue
        try:
            error = exchange(conn, byte, deadline)
        except OSError as e:
            error = str(e)
            emit({"ev": "lost", "t": sent_wall, "why": error})
            conn.close()
            conn = None
        record("long", seq, sent_wall, sent, error)


def probe(ip, port, interval, seconds):
    try:
        conn = connect(ip, port, 5.0)
        Icmp(ip).sock.close()
    except OSError as e:
        emit({"ev": "fatal", "why": "%s:%d: %s" % (ip, port, e)})
        sys.exit(3)
    start = time.monotonic()
    emit({"ev": "start", "t": time.time()})
    loops = [
        threading.Thread(target=icmp_loop, args=(ip, interval, seconds, start)),
        threading.Thread(target=request_loop, args=(ip, port, interval, seconds, start)),
        threading.Thread(target=long_loop, args=(ip, port, interval, seconds, start, conn)),
    ]
    for t in loops:
        t.daemon = True
        t.start()
    for t in loops:
        t.join()


def main(argv):
    if len(argv) == 4 and argv[0] == "serve":
        serve(argv[1], int(argv[2]), float(argv[3]))
    elif len(argv) == 5 and argv[0] == "probe":
        probe(argv[1], int(argv[2]), float(argv[3]), float(argv[4]))
    else:
        print("usage: serve IP PORT SECONDS | probe IP PORT INTERVAL SECONDS", file=sys.stderr)
        sys.exit(2)


main(sys.argv[1:])
