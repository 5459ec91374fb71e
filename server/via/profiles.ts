/**
 * The proxies `--via` puts in front of a design and their profiles: data only, so the options that name them load
 * nothing else (server/via/proxy.ts starts them).
 */
export const PROXIES = ['nginx', 'haproxy'] as const;
export type ProxyKind = (typeof PROXIES)[number];
export const VIA_PROFILES = ['default', 'hardened'] as const;
export type ViaProfile = (typeof VIA_PROFILES)[number];

/**
 * Each proxy's two profiles, the values its template takes. `default`: what a user gets from the Debian package
 * (nginx's built-in timeouts, which Debian's nginx.conf does not change; the timeouts of Debian's haproxy.cfg).
 * `hardened`: a short header/handshake deadline against slowloris, a send deadline against clients that never read
 * (nginx), and an idle/tunnel timeout longer than the backend's keepalive pings (sent at half its 120 s idle
 * timeout) so idle WebSockets are kept. Documented in docs/defenses.md ("Behind a proxy").
 */
export const PROFILES: Record<ProxyKind, Record<ViaProfile, Record<string, string>>> = {
  nginx: {
    default: { clientHeaderTimeout: '60s', sendTimeout: '60s', proxyConnectTimeout: '60s', proxyReadTimeout: '60s', proxySendTimeout: '60s' },
    hardened: { clientHeaderTimeout: '5s', sendTimeout: '10s', proxyConnectTimeout: '5s', proxyReadTimeout: '150s', proxySendTimeout: '150s' },
  },
  haproxy: {
    default: { timeoutConnect: '5s', timeoutClient: '50s', timeoutServer: '50s', extraTimeouts: '' },
    hardened: {
      timeoutConnect: '5s', timeoutClient: '150s', timeoutServer: '150s',
      extraTimeouts: '    timeout http-request 5s\n    timeout tunnel 150s\n    timeout client-fin 5s',
    },
  },
};

