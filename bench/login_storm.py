#!/usr/bin/env python3
"""A login storm: CONCURRENCY browsers sign in with a password through the HTML login page,
each over and over (authorize, the login page, its POST, on to the redirect with a code), for
DURATION seconds; then the same storm again with userinfo requests at a steady RATE a second
beside it, and those requests alone. Prints sign-ins/s against CEILING (the argon2id checks a
second the server's password workers manage on their own, `latchkey config password-speed`),
sign-in latency, the server's CPU per sign-in (from /proc/PID/stat, so this driver's own CPU
does not count, but it is printed) with the share of it one check takes (MS_EACH, the
ceiling's time per check on one worker), and userinfo's p50/p99 with the storm and without.

Userinfo is sent open-loop: each request is due at a fixed time, and its latency counts from
then, so a stalled server shows as latency rather than as fewer requests.

    login_storm.py BASE PIDS CLIENT_ID SECRET REDIRECT_URI USERS PASSWORD CEILING MS_EACH
                   [DURATION=20] [CONCURRENCY=16] [RATE=200]

PIDS: the server's processes, comma-separated; USERS: usernames, comma-separated (the storm
takes them in turn).
"""
import asyncio, base64, hashlib, html, os, re, secrets, sys, time, urllib.parse

BASE, PIDS, CLIENT_ID, SECRET, REDIRECT, USERS, PASSWORD, CEILING, MS_EACH = sys.argv[1:10]
BASE = BASE.rstrip("/")
PIDS = [int(p) for p in PIDS.split(",")]
USERS = USERS.split(",")
CEILING, MS_EACH = float(CEILING), float(MS_EACH)
DURATION = float(sys.argv[10]) if len(sys.argv) > 10 else 20.0
CONCURRENCY = int(sys.argv[11]) if len(sys.argv) > 11 else 16
RATE = float(sys.argv[12]) if len(sys.argv) > 12 else 200.0
WARMUP = 2.0
HOST, PORT = urllib.parse.urlsplit(BASE).hostname, urllib.parse.urlsplit(BASE).port
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
FORM = re.compile(r'<form method="post" action="([^"]+)" id="login">.*?name="csrf" value="([^"]+)"', re.S)


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self):
        self.reader = self.writer = None

    async def request(self, method, target, headers=(), body=b""):
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(HOST, PORT)
            head = [f"{method} {target} HTTP/1.1", f"Host: {HOST}:{PORT}", f"User-Agent: {UA}", *headers]
            if body:
                head += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
            self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            try:
                return await self.response()
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()
                if attempt:
                    raise

    async def response(self):
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = [tuple(h.split(": ", 1)) for h in head[1:] if ": " in h]
        named = lambda n: [v for k, v in headers if k.lower() == n]
        if named("transfer-encoding"):
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            body = await self.reader.readexactly(int((named("content-length") or ["0"])[0]))
        if any(v.lower() == "close" for v in named("connection")):
            self.close()
        return status, named, body.decode("utf-8", "replace")

    def close(self):
        if self.writer:
            self.writer.close()
        self.reader = self.writer = None


def pkce():
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def sign_in(conn, username):
    """A new browser's sign-in: the code it ends with and its PKCE verifier; None if the server
    answered 503 (the password queue was full)."""
    verifier, challenge = pkce()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": "openid",
        "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256"})
    target, body, jar = f"/authorize?{query}", b"", {}
    for _ in range(10):
        cookie = [f"Cookie: {'; '.join(f'{k}={v}' for k, v in jar.items())}"] if jar else []
        status, named, text = await conn.request("POST" if body else "GET", target, cookie, body)
        for c in named("set-cookie"):
            name, _, value = c.split(";", 1)[0].partition("=")
            if value and "max-age=0" not in c.lower():
                jar[name] = value
            else:
                jar.pop(name, None)
        body = b""
        if status == 503:
            return None
        if status in (302, 303):
            location = named("location")[0]
            if location.startswith(REDIRECT):
                code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).get("code")
                if not code:
                    sys.exit(f"the sign-in ended without a code: {location}")
                return code[0], verifier
            target = urllib.parse.urlsplit(urllib.parse.urljoin(BASE + target, location))
            target = target.path + (f"?{target.query}" if target.query else "")
            continue
        form = FORM.search(text) if status == 200 else None
        if not form:
            sys.exit(f"no login form at {target}: HTTP {status}: {text[:300]}")
        target = html.unescape(form[1])
        body = urllib.parse.urlencode({"csrf": html.unescape(form[2]), "username": username,
                                       "password": PASSWORD}).encode()
    sys.exit("the sign-in took more than ten steps")


async def access_token():
    conn = Connection()
    code, verifier = await sign_in(conn, USERS[0])
    basic = base64.b64encode(f"{urllib.parse.quote(CLIENT_ID)}:{urllib.parse.quote(SECRET)}".encode()).decode()
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                   "code_verifier": verifier}).encode()
    status, _, text = await conn.request("POST", "/token", [f"Authorization: Basic {basic}"], body)
    conn.close()
    token = re.search(r'"access_token":"([^"]+)"', text)
    if status != 200 or not token:
        sys.exit(f"no access token: HTTP {status}: {text[:300]}")
    return token[1]


def ticks(stat):
    fields = open(stat).read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pids):
    """The CPU the server's processes used, and of it the password workers' (Latchkey's
    `argon2-N` threads)."""
    total = sum(ticks(f"/proc/{pid}/stat") for pid in pids)
    tasks = f"/proc/{pids[0]}/task"
    hashing = sum(ticks(f"{tasks}/{t}/stat") for t in os.listdir(tasks)
                  if open(f"{tasks}/{t}/comm").read().startswith("argon2"))
    return total / os.sysconf("SC_CLK_TCK"), hashing / os.sysconf("SC_CLK_TCK")


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def storm(vu, deadline, counted_from, done, busy):
    conn, n = Connection(), 0
    while time.monotonic() < deadline:
        start = time.monotonic()
        ok = await sign_in(conn, USERS[(vu + n * CONCURRENCY) % len(USERS)])
        n += 1
        if start >= counted_from:
            (done if ok else busy).append(time.monotonic() - start)
    conn.close()


async def userinfo(token, deadline, counted_from, latencies, errors):
    """Requests due every 1/RATE s from now until the deadline, each on a free connection."""
    free, interval = [], 1 / RATE
    async def one(due):
        conn = free.pop() if free else Connection()
        status, _, _ = await conn.request("GET", "/userinfo", [f"Authorization: Bearer {token}"])
        free.append(conn)
        if due >= counted_from:
            latencies.append(time.monotonic() - due)
            if status != 200:
                errors.append(status)
    tasks, due = [], time.monotonic()
    while due < deadline:
        await asyncio.sleep(max(0, due - time.monotonic()))
        tasks.append(asyncio.ensure_future(one(due)))
        due += interval
    await asyncio.gather(*tasks)
    for c in free:
        c.close()


async def run(name, with_storm, with_userinfo, token):
    start = time.monotonic()
    counted_from, deadline = start + WARMUP, start + WARMUP + DURATION
    done, busy, latencies, errors = [], [], [], []
    jobs = [asyncio.ensure_future(storm(vu, deadline, counted_from, done, busy))
            for vu in range(CONCURRENCY if with_storm else 0)]
    if with_userinfo:
        jobs.append(asyncio.ensure_future(userinfo(token, deadline, counted_from, latencies, errors)))
    await asyncio.sleep(WARMUP)
    cpu0, own0, t0 = cpu_seconds(PIDS), time.process_time(), time.monotonic()
    await asyncio.sleep(max(0, deadline - time.monotonic()))
    (cpu1, hashing1), own, elapsed = cpu_seconds(PIDS), time.process_time() - own0, time.monotonic() - t0
    cpu, beside = cpu1 - cpu0[0], (cpu1 - hashing1) - (cpu0[0] - cpu0[1])
    await asyncio.gather(*jobs)
    parts = [f"{name:<22}"]
    if with_storm:
        rate = len(done) / elapsed
        parts.append(f"sign-ins {rate:6.1f}/s ({rate / CEILING:4.0%} of the ceiling), p50 {percentile(done, .5):5.0f} ms, "
                     f"p99 {percentile(done, .99):5.0f} ms, 503 {len(busy)}, "
                     f"server CPU {cpu * 1000 / max(1, len(done)):5.1f} ms per sign-in "
                     f"(a check {MS_EACH * len(done) / max(cpu * 1000, 1e-9):4.0%} of it; "
                     f"{beside * 1000 / max(1, len(done)):4.2f} ms beside the password workers)")
    if with_userinfo:
        parts.append(f"userinfo {len(latencies) / elapsed:5.0f}/s, p50 {percentile(latencies, .5):5.1f} ms, "
                     f"p99 {percentile(latencies, .99):5.1f} ms, max {percentile(latencies, 1):5.1f} ms, "
                     f"errors {len(errors)}")
    parts.append(f"driver CPU {own / elapsed:4.0%}")
    print(" | ".join(parts), flush=True)


async def main():
    token = await access_token()
    print(f"ceiling: {CEILING:.1f} argon2id checks/s, {MS_EACH:.1f} ms each; {CONCURRENCY} browsers; userinfo at {RATE:.0f}/s; "
          f"{DURATION:.0f} s each after {WARMUP:.0f} s of warm-up", flush=True)
    await run("storm", True, False, token)
    await run("storm + userinfo", True, True, token)
    await run("userinfo alone", False, True, token)


asyncio.run(main())
