// Who is calling, for rate limits: the socket's peer, or with MAESTRO_TRUST_PROXY the address the
// trusted proxies forwarded (proxy-addr, what Express's req.ip uses, so both paths agree).
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';

export type ClientAddress = (req: IncomingMessage) => string;

export function clientAddress(trust: boolean | number | string[]): ClientAddress {
  if (trust === false) return (req) => req.socket.remoteAddress ?? 'unknown';
  const trusted =
    trust === true ? () => true : typeof trust === 'number' ? (_: string, hop: number) => hop < trust : proxyAddr.compile(trust);
  return (req) => proxyAddr(req, trusted);
}
