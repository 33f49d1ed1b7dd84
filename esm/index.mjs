// ESM entry: re-exports the CommonJS build, so both module systems share one instance.
// Every export of dist/index.js is named here; test/package-esm-exports.test.ts compares the two.
import muxnet from '../dist/index.js';

export const {
  listen, dial, AbortError, backends, backendCapabilities, unavailableBackends, Conn, UnixConn, Listener, PacketConn, listenPacket, Addr,
  connections, stats, metricsText, metricFamilies, metricCollectors, OpError, ErrClosed, ErrDeadlineExceeded, SystemError, errorIs, ConnStream,
  serveWorkers, WorkerGroup, WorkerError, workerListener,
  parseProxyHeader, ProxyProtocolError, proxyHeader,
  TLSConn, listenTLS, dialTLS, tlsServer, tlsClient, pipe,
} = muxnet;
export default muxnet;
