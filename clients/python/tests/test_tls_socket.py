"""The TLS socket of a secured link (labc/tls_socket.py): one thread at a time in OpenSSL's SSL
object, as labc's connections read on one thread and write on another. Python 3.13 or newer."""

import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

from labc import tls  # noqa: E402
from labc.tls_socket import TlsSocket  # noqa: E402

HAS_PSK = sys.version_info >= (3, 13) and getattr(ssl, "HAS_PSK", False)
WHY_SKIPPED = "TLS with an external PSK needs Python 3.13's ssl (SSLContext.set_psk_client_callback); run this file with python3.13"
SECRET = "labc1_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
#: New links in the test of the race: without the turn about 1 in 100 lost its echo here.
LINKS = 400

#: A TLS-PSK echo server that sends its session tickets after each handshake, as Node's does
#: (a TypeScript labc server's): what comes in just as the client writes its first request.
ECHO_SERVER = """
import socket, ssl, sys, threading
sys.path.insert(0, sys.argv[1])
from labc import tls
key = tls.network_key(sys.argv[2])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls._tls13(context)
context.verify_mode = ssl.CERT_NONE
context.set_psk_server_callback(lambda identity: key.psk_for(identity) or b"")
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)

def echo(sock):
    try:
        with context.wrap_socket(sock, server_side=True) as link:
            while data := link.recv(65536):
                link.sendall(data)
    except OSError:
        pass

while True:
    sock, _ = listener.accept()
    threading.Thread(target=echo, args=(sock,), daemon=True).start()
"""


def link(port: int) -> TlsSocket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return tls.client_side(sock, SECRET, f"127.0.0.1:{port}")


@unittest.skipUnless(HAS_PSK, WHY_SKIPPED)
class OneThreadAtATime(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, os.path.join(REPO, "clients", "python"), SECRET],
                                      stdout=subprocess.PIPE, text=True)
        cls.port = int(cls.server.stdout.readline())

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()
        cls.server.wait()
        cls.server.stdout.close()

    def test_a_write_waits_for_the_read_inside_the_ssl_object(self):
        # A read on a socket with a timeout stays inside the SSL object until it gives up (the
        # server sends nothing unasked): a write from another thread meanwhile waits for it.
        with link(self.port) as secured:
            secured.settimeout(1.0)
            ended = {}

            def read():
                try:
                    secured.recv(10)
                except socket.timeout:
                    pass
                finally:
                    ended["read"] = time.monotonic()

            reader = threading.Thread(target=read)
            reader.start()
            time.sleep(0.3)
            secured.send(b"ping")
            ended["write"] = time.monotonic()
            reader.join(5)
            self.assertGreaterEqual(ended["write"], ended["read"], "the write ran while a read was inside the SSL object")
            self.assertEqual(secured.recv(10), b"ping")

    def test_new_links_read_on_one_thread_and_written_on_another_all_answer(self):
        lost = []
        for n in range(LINKS):
            with link(self.port) as secured:
                secured.setblocking(False)
                got = bytearray()

                def read():
                    # As labc's I/O loop: it watches the link from the start, so it reads the
                    # server's session tickets while the caller writes its request.
                    end = time.monotonic() + 2
                    while len(got) < 64 and time.monotonic() < end:
                        if not secured.pending():
                            select.select([secured], [], [], 0.05)
                        try:
                            data = secured.recv(65536)
                        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                            continue
                        except OSError:
                            return
                        if not data:
                            return
                        got.extend(data)

                reader = threading.Thread(target=read)
                reader.start()
                time.sleep(0.0005 * (n % 4))  # the write lands at varied points of the ticket's read
                out = b"r" * 64
                try:
                    while out:
                        try:
                            out = out[secured.send(out):]
                        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                            select.select([], [secured], [], 0.01)
                except OSError as error:
                    out = error
                reader.join()
                if out or len(got) < 64:
                    lost.append(f"link {n}: {len(got)} of 64 bytes echoed" + (f" ({out!r})" if out else ""))
        self.assertEqual(lost, [])


if __name__ == "__main__":
    unittest.main()
