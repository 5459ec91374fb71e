"""py-threads: the seed's thread-per-connection design, in its own runtime -- Python stdlib only.

socketserver.ThreadingTCPServer gives every connection its own OS thread doing blocking I/O; the RFC 6455 framing
is written here (handshake, masking, fragmentation, ping/pong, close codes). Every verb runs under the GIL: `wait`
and `block` are time.sleep (only this connection's thread waits), `cpu` holds the GIL while it works. It exports no
metrics: the lab measures it from outside. Usage: python3 py_threads.py PORT
"""
import base64
import hashlib
import os
import signal
import socket
import socketserver
import struct
import sys
import threading

from wslab_protocol import handle

GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
MAX_HEAD = 8192
MAX_PAYLOAD = 1 << 20
HANDSHAKE_TIMEOUT = 10.0
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class Closed(Exception):
    """The connection ends: `code` is sent in a close frame, or None to just drop it."""

    def __init__(self, code=None):
        super().__init__(code)
        self.code = code


def refuse(sock, status, text):
    sock.sendall(('HTTP/1.1 %s\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nwslab: %s\n' % (status, text)).encode())


class Connection(socketserver.BaseRequestHandler):
    """One connection, one thread: handshake, then frames until a close."""

    def handle(self):
        sock = self.request
        self.lock = threading.Lock()  # replies come from this thread only; the lock keeps a frame whole anyway
        try:
            if not self.handshake(sock):
                return
            self.frames(sock)
        except Closed as c:
            if c.code is not None:
                try:
                    self.send(CLOSE, struct.pack('!H', c.code))
                except OSError:
                    pass
        except (OSError, ConnectionError):
            pass

    def handshake(self, sock):
        sock.settimeout(HANDSHAKE_TIMEOUT)
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            head += chunk
            if len(head) > MAX_HEAD:
                refuse(sock, '431 Request Header Fields Too Large', 'request head over 8 KiB')
                return False
        lines = head.split(b'\r\n\r\n', 1)[0].decode('latin-1').split('\r\n')
        method = lines[0].split(' ')[0]
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(':')
            headers[k.strip().lower()] = v.strip()
        if method != 'GET':
            refuse(sock, '405 Method Not Allowed', 'GET only')
            return False
        if headers.get('upgrade', '').lower() != 'websocket' or 'upgrade' not in headers.get('connection', '').lower():
            refuse(sock, '426 Upgrade Required', 'not a WebSocket upgrade')
            return False
        key = headers.get('sec-websocket-key', '')
        try:
            ok_key = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            ok_key = False
        if not ok_key:
            refuse(sock, '400 Bad Request', 'bad Sec-WebSocket-Key')
            return False
        if headers.get('sec-websocket-version') != '13':
            sock.sendall(b'HTTP/1.1 400 Bad Request\r\nsec-websocket-version: 13\r\nconnection: close\r\n\r\n')
            return False
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        sock.sendall(('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n'
                      'sec-websocket-accept: %s\r\n\r\n' % accept).encode())
        sock.settimeout(None)
        self.buf = head.split(b'\r\n\r\n', 1)[1]
        return True

    def read(self, sock, n):
        while len(self.buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise Closed()
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, opcode, payload):
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else struct.pack('!BH', 126, n) if n < 65536 else struct.pack('!BQ', 127, n))
        with self.lock:
            self.request.sendall(head + payload)

    def frames(self, sock):
        message, kind = None, None
        while True:
            b0, b1 = self.read(sock, 2)
            fin, rsv, opcode, masked, n = b0 & 0x80, b0 & 0x70, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            if rsv or not masked or opcode not in (TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION):
                raise Closed(1002)
            if n == 126:
                n = struct.unpack('!H', self.read(sock, 2))[0]
            elif n == 127:
                n = struct.unpack('!Q', self.read(sock, 8))[0]
                if n >> 63:
                    raise Closed(1002)
            control = opcode >= CLOSE
            if control and (not fin or n > 125):
                raise Closed(1002)
            if n > MAX_PAYLOAD or (message is not None and len(message) + n > MAX_PAYLOAD):
                raise Closed(1009)
            mask = self.read(sock, 4)
            data = bytes(b ^ mask[i & 3] for i, b in enumerate(self.read(sock, n))) if n else b''
            if opcode == PING:
                self.send(PONG, data)
            elif opcode == PONG:
                pass
            elif opcode == CLOSE:
                self.close_frame(data)
            elif opcode == CONTINUATION:
                if message is None:
                    raise Closed(1002)
                message += data
                if fin:
                    self.message(kind, message)
                    message, kind = None, None
            else:
                if message is not None:
                    raise Closed(1002)
                if fin:
                    self.message(opcode, data)
                else:
                    message, kind = data, opcode

    def close_frame(self, data):
        if len(data) == 1:
            raise Closed(1002)
        if data:
            code = struct.unpack('!H', data[:2])[0]
            valid = code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or 3000 <= code <= 4999
            if not valid:
                raise Closed(1002)
            try:
                data[2:].decode('utf-8')
            except UnicodeDecodeError:
                raise Closed(1007)
            raise Closed(code)
        raise Closed(1000)

    def message(self, kind, data):
        if kind == BINARY:
            self.send(BINARY, data)
            return
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError:
            raise Closed(1007)
        # a thread's natural wait is a blocking sleep: only this connection waits
        reply = handle(text, lambda ms, t: __import__('time').sleep(ms / 1000) or t)
        self.send(TEXT, reply.encode('utf-8', 'replace'))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096


if __name__ == '__main__':
    port = int(sys.argv[1])
    server = Server(('127.0.0.1', port), Connection)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print('py-threads ready on %d (pid %d)' % (port, os.getpid()), flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    server.server_close()
