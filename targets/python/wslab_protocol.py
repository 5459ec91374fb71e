"""The wslab wire protocol (docs/protocol.md), once, for the Python reference designs.

A request is one text line `<id> <verb> [<arg>]`; the reply repeats the id: `<id> ok <result>` or
`<id> err <code> <detail>`. `wait` is the design's natural wait (its caller supplies it); `block` is time.sleep on
the handling thread -- in asyncio, the seed's mistake, literally.
"""
import time

ID_BYTES = 32
LIMITS = {'wait': 60_000, 'block': 60_000, 'cpu': 1_000_000, 'fill': 8 * 1024 * 1024}
MASK32 = 0xFFFFFFFF


def cpu_work(n):
    """n units of the protocol's deterministic xorshift work; the 8-hex-digit result proves it was done."""
    x = (0x9E3779B9 ^ n) & MASK32
    for _ in range(n * 1000):
        x ^= (x << 13) & MASK32
        x ^= x >> 17
        x ^= (x << 5) & MASK32
    return '%08x' % x


def parse(text):
    """(id, verb, arg) of a request, or (None, None, reply) when it is malformed before its verb is known."""
    sp = text.find(' ')
    rid = text if sp < 0 else text[:sp]
    if not rid or len(rid.encode('utf-8', 'surrogatepass')) > ID_BYTES:
        return None, None, '- err bad_request missing or oversized request id'
    if sp < 0:
        return None, None, rid + ' err unknown_command missing command'
    rest = text[sp + 1:]
    sp2 = rest.find(' ')
    verb, arg = (rest, None) if sp2 < 0 else (rest[:sp2], rest[sp2 + 1:])
    return rid, verb, arg


def integer(verb, arg):
    """The verb's integer argument, or None when missing, not decimal or out of range."""
    if arg is None or not arg.isdigit() or not arg.isascii() or len(arg) > 9:
        return None
    n = int(arg)
    return n if n <= LIMITS[verb] else None


def bad_argument(rid, verb):
    return '%s err bad_argument %s takes an integer 0-%d' % (rid, verb, LIMITS[verb])


def handle(text, wait):
    """The reply to one request; `wait(ms)` is how this design waits on a slow backend (it may be a coroutine's)."""
    rid, verb, arg = parse(text)
    if rid is None:
        return arg
    if verb == 'echo':
        return '%s ok %s' % (rid, arg or '')
    if verb not in LIMITS:
        # cut at 32 UTF-16 units, as every design does (a split surrogate pair becomes U+FFFD)
        return '%s err unknown_command %s' % (rid, verb.encode('utf-16-le', 'surrogatepass')[:64].decode('utf-16-le', 'replace'))
    n = integer(verb, arg)
    if n is None:
        return bad_argument(rid, verb)
    if verb == 'wait':
        return wait(n, '%s ok %d' % (rid, n))
    if verb == 'block':
        time.sleep(n / 1000)
        return '%s ok %d' % (rid, n)
    if verb == 'cpu':
        return '%s ok %s' % (rid, cpu_work(n))
    return '%s ok %s' % (rid, 'x' * n)
