import { createServer, isIP, type AddressInfo, type Server } from 'node:net';

/**
 * Binds `port` on `host` (0 = any free port) and lets it go, resolving with the port: for a process that must be
 * told its port up front. Rejects with the bind error (EADDRINUSE, EACCES...), so a given port is checked too.
 */
export function freePort(host: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().once('error', reject).listen(port, host, () => {
      const bound = (s.address() as AddressInfo).port;
      s.close(() => resolve(bound));
    });
  });
}

/** A host as it goes into a URL or a `host:port`: an IPv6 address in brackets. */
export const hostForUrl = (h: string): string => (h.includes(':') ? `[${h}]` : h);

/** Binds `server` and resolves with the port actually bound; rejects with the bind error (EADDRINUSE, EACCES...). */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 4096 }, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/**
 * Stops accepting and waits for open connections to finish their close handshakes, for at most `graceMs`;
 * then calls `force` to drop what is left, so shutdown is bounded even when clients never answer.
 */
export async function closeHttp(server: Server, force: () => void, graceMs = 2000): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const timer = setTimeout(force, graceMs);
  timer.unref();
  await closed;
  clearTimeout(timer);
}

/** The address a URL's host names, without resolving: `[::1]` → `::1`, `localhost` → `127.0.0.1`, a name as is. */
export function hostAddress(url: URL): string {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' ? '127.0.0.1' : host;
}

/** 127.0.0.0/8, ::1, or 127.0.0.0/8 written as IPv4-mapped IPv6 (::ffff:127.0.0.1): the only addresses wslab loads unless told otherwise. */
export const isLoopback = (ip: string): boolean => {
  const family = isIP(ip);
  if (family === 4) return ip.startsWith('127.');
  if (family !== 6) return false;
  const v6 = ip.toLowerCase();
  if (v6 === '::1' || v6 === '0:0:0:0:0:0:0:1') return true;
  if (!v6.startsWith('::ffff:')) return false;
  // WHATWG URL writes ::ffff:127.0.0.1 as ::ffff:7f00:1
  const hex = /^([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(v6.slice(7));
  return hex ? Number.parseInt(hex[1], 16) >> 8 === 127 : isLoopback(v6.slice(7));
};
