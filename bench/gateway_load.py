#!/usr/bin/env python3
"""Forward-auth load: signs one browser in through /gateway/sign-in (the login flow, as a
proxy would send it there), then asks /gateway/auth about an authenticated request as a proxy
does, over CONCURRENCY keep-alive connections for DURATION seconds. Prints checks/s, p50/p99
latency and the server's CPU per check (from /proc/PID/stat, so this driver's own CPU does not
count).

    gateway_load.py BASE SERVER_PID [DURATION] [CONCURRENCY]
"""
import asyncio, html, http.cookiejar, os, re, sys, time, urllib.parse, urllib.request

BASE, PID = sys.argv[1].rstrip("/"), int(sys.argv[2])
DURATION = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
CONCURRENCY = int(sys.argv[4]) if len(sys.argv) > 4 else 16
USER, PASSWORD = "bench", "violet hammer quiz 1234"
APP = "http://app.bench.localhost/"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def sign_in():
    """The gateway cookie of a fresh sign-in."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", UA)]

    def go(url, data=None):
        try:
            r = opener.open(url, data=data)
            return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    url = f"{BASE}/gateway/sign-in?rd={urllib.parse.quote(APP, safe='')}"
    for _ in range(8):
        status, headers, body = go(url)
        cookie = [c for c in headers.get_all("Set-Cookie") or [] if c.startswith("latchkey_gateway=")]
        if cookie:
            return cookie[0].split(";")[0]
        if status in (302, 303):
            url = urllib.parse.urljoin(url, headers["Location"])
            continue
        form = re.search(r'<form method="post" action="([^"]+)" id="login">.*?name="csrf" value="([^"]+)"', body, re.S)
        if not form:
            sys.exit(f"no login form at {url}: {status}")
        data = urllib.parse.urlencode({"csrf": html.unescape(form[2]), "username": USER, "password": PASSWORD})
        status, headers, _ = go(urllib.parse.urljoin(url, html.unescape(form[1])), data.encode())
        url = urllib.parse.urljoin(url, headers["Location"])
    sys.exit("the sign-in did not end with a gateway cookie")


def cpu_seconds():
    fields = open(f"/proc/{PID}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def worker(host, port, request, deadline, latencies, errors):
    reader, writer = await asyncio.open_connection(host, port)
    while time.monotonic() < deadline:
        start = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
        if length:
            await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
        if not head.startswith(b"HTTP/1.1 200"):
            errors.append(head.split(b"\r\n")[0])
    writer.close()


async def main():
    cookie = sign_in()
    u = urllib.parse.urlsplit(BASE)
    request = (
        f"GET /gateway/auth HTTP/1.1\r\nHost: {u.netloc}\r\nUser-Agent: {UA}\r\nAccept: text/html\r\n"
        f"Cookie: {cookie}\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.bench.localhost\r\n"
        f"X-Forwarded-Uri: /\r\nX-Forwarded-Method: GET\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n"
    ).encode()
    latencies, errors = [], []
    # Warm-up: one second, not counted.
    await asyncio.gather(*(worker(u.hostname, u.port, request, time.monotonic() + 1, [], []) for _ in range(CONCURRENCY)))
    cpu0, t0 = cpu_seconds(), time.monotonic()
    deadline = t0 + DURATION
    await asyncio.gather(*(worker(u.hostname, u.port, request, deadline, latencies, errors) for _ in range(CONCURRENCY)))
    elapsed, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
    latencies.sort()
    n = len(latencies)
    p = lambda q: latencies[min(n - 1, int(q * n))] * 1000
    print(f"concurrency {CONCURRENCY}: {n / elapsed:.0f} checks/s, p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, "
          f"server CPU {cpu * 1000 / n:.4f} ms per check, errors {len(errors)}")
    if errors:
        print("first error:", errors[0].decode(errors="replace"))


asyncio.run(main())
