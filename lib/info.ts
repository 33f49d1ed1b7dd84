// What a socket is doing: the types of connections() and stats(), and TCP_INFO decoded from the addon's numbers.
import type { NativeLoop } from './native';

/** TCP states as Linux numbers them (include/net/tcp_states.h), by name. */
const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT',
  'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV'];

/** The kernel's view of a TCP connection (`TCP_INFO`). Times in milliseconds; NaN where the kernel does not say. */
export interface TcpInfo {
  /** 'ESTABLISHED', 'SYN_SENT', 'FIN_WAIT1', 'TIME_WAIT', 'CLOSE_WAIT', 'LISTEN', … */
  state: string;
  /** Smoothed round-trip time. */
  rtt: number;
  /** Variation of the round-trip time. */
  rttVar: number;
  /** The lowest round-trip time seen. */
  minRtt: number;
  /** Retransmission timeout. */
  rto: number;
  /** Retransmissions of the current unacknowledged segment. */
  retransmits: number;
  /** Retransmissions over the connection's life. */
  totalRetransmits: number;
  /** Segments sent and not yet acknowledged. */
  unacked: number;
  /** Segments the kernel thinks are lost. */
  lost: number;
  /** Congestion window, in segments. */
  congestionWindow: number;
  /** Slow-start threshold, in segments. */
  slowStartThreshold: number;
  /** Maximum segment size for sending, bytes. */
  sendMss: number;
  /** Maximum segment size seen from the peer, bytes. */
  receiveMss: number;
  /** Path MTU, bytes. */
  pathMtu: number;
  /** Bytes sent, retransmissions included. */
  bytesSent: number;
  /** Bytes the peer acknowledged. */
  bytesAcked: number;
  /** Bytes received. */
  bytesReceived: number;
  /** Segments sent. */
  segmentsOut: number;
  /** Segments received. */
  segmentsIn: number;
  /** Bytes written but not yet sent. */
  notSentBytes: number;
  /** The kernel's estimate of the delivery rate, bytes per second. */
  deliveryRate: number;
}

/** One socket of muxnet's, as {@link connections} lists it (in the spirit of `ss`). */
export interface SocketInfo {
  /** A listener, or a connection (stream or datagram). */
  kind: 'listener' | 'conn';
  /** 'tcp', 'tcp4', 'tcp6' or 'unix'. */
  network: string;
  /** The local address as a string; '' for an unnamed Unix socket. */
  local: string;
  /** The remote address as a string; '' where there is none (a listener, an unconnected datagram socket). */
  remote: string;
  /** The TCP state ('ESTABLISHED', 'LISTEN', 'CLOSE_WAIT', …); Unix: 'LISTEN' or 'CONNECTED'. */
  state: string;
  /** The loop's backend, e.g. 'epoll'. */
  backend: string;
  /** Bytes read through muxnet on this socket. */
  bytesRead: number;
  /** Bytes written through muxnet on this socket (taken by the kernel). */
  bytesWritten: number;
  /** Milliseconds since the socket was opened (accepted, dialed or listening). */
  age: number;
}

/** What {@link Conn.info} returns: the listing's fields, buffer sizes and, for TCP, `TCP_INFO`. */
export interface ConnInfo extends SocketInfo {
  /** SO_RCVBUF in force (the kernel doubles what was asked), bytes. */
  readBuffer: number;
  /** SO_SNDBUF in force, bytes. */
  writeBuffer: number;
  /** The kernel's TCP state and counters; absent for Unix sockets. */
  tcp?: TcpInfo;
}

/** Counters of one loop (one per backend configuration per thread), for monitoring. */
export interface LoopStats {
  /** The backend, e.g. 'epoll'. */
  backend: string;
  /** Level- or edge-triggered readiness. */
  trigger: 'level' | 'edge';
  /** Waiting on Node's thread ('inline') or on a helper thread. */
  mode: 'inline' | 'thread';
  /** Connections (stream and datagram) open now. */
  connections: number;
  /** Listeners open now. */
  listeners: number;
  /** Connections accepted since the loop started. */
  accepted: number;
  /** Connections dialed since the loop started. */
  dialed: number;
  /** Bytes read since the loop started. */
  bytesRead: number;
  /** Bytes written since the loop started. */
  bytesWritten: number;
  /** Connections garbage-collected without close(). */
  leaked: number;
  /** Operation errors by code (ECONNRESET, ETIMEDOUT, EMFILE, …); closing is not an error. */
  errors: Record<string, number>;
  /**
   * Connections closed at once by listeners' limits, by reason ('maxConnections',
   * 'maxConnectionsPerIP', 'acceptRate', 'blocked'); see {@link ConnectionLimits}.
   */
  refused: Record<string, number>;
}

// info(): [bytes in, bytes out, age ms, SO_RCVBUF, SO_SNDBUF, has TCP_INFO, TCP_INFO fields...]
// in the order of TcpInfoField in native/core/socket.h (the addon's constants.tcpInfoField,
// which test/addon-constants.test.ts checks this against).
const enum F {
  BytesIn, BytesOut, Age, RcvBuf, SndBuf, HasTcp,
  State, CaState, Retransmits, Probes, Backoff, RtoUs, AtoUs, SndMss, RcvMss, Unacked, Sacked,
  Lost, Retrans, Pmtu, RcvSsthresh, RttUs, RttVarUs, SndSsthresh, SndCwnd, AdvMss, Reordering,
  RcvRttUs, RcvSpace, TotalRetrans, BytesAcked, BytesReceived, SegsOut, SegsIn, NotsentBytes,
  MinRttUs, DeliveryRate, BytesSent, Count,
}

const scratch = new Float64Array(F.Count);

/** Reads a socket's counters and TCP_INFO; 0 or -errno. @internal */
export function readInfo(native: NativeLoop, id: number): Float64Array | number {
  const r = native.info(id, scratch);
  return r < 0 ? r : scratch;
}

/** The `TCP_INFO` part of a {@link readInfo} result, or undefined for a socket that is not TCP. @internal */
export function tcpInfo(v: Float64Array): TcpInfo | undefined {
  if (v[F.HasTcp] !== 1) return undefined;
  const ms = (us: number): number => us / 1000;
  return {
    state: TCP_STATES[v[F.State]] ?? `UNKNOWN(${v[F.State]})`,
    rtt: ms(v[F.RttUs]),
    rttVar: ms(v[F.RttVarUs]),
    minRtt: ms(v[F.MinRttUs]),
    rto: ms(v[F.RtoUs]),
    retransmits: v[F.Retransmits],
    totalRetransmits: v[F.TotalRetrans],
    unacked: v[F.Unacked],
    lost: v[F.Lost],
    congestionWindow: v[F.SndCwnd],
    slowStartThreshold: v[F.SndSsthresh],
    sendMss: v[F.SndMss],
    receiveMss: v[F.RcvMss],
    pathMtu: v[F.Pmtu],
    bytesSent: v[F.BytesSent],
    bytesAcked: v[F.BytesAcked],
    bytesReceived: v[F.BytesReceived],
    segmentsOut: v[F.SegsOut],
    segmentsIn: v[F.SegsIn],
    notSentBytes: v[F.NotsentBytes],
    deliveryRate: v[F.DeliveryRate],
  };
}

/** Builds a {@link ConnInfo} from a {@link readInfo} result. @internal */
export function connInfo(v: Float64Array, base: Omit<SocketInfo, 'state' | 'bytesRead' | 'bytesWritten' | 'age'>,
                         unixState: string): ConnInfo {
  const tcp = tcpInfo(v);
  const info: ConnInfo = {
    ...base,
    state: tcp?.state ?? unixState,
    bytesRead: v[F.BytesIn],
    bytesWritten: v[F.BytesOut],
    age: v[F.Age],
    readBuffer: v[F.RcvBuf],
    writeBuffer: v[F.SndBuf],
  };
  if (tcp !== undefined) info.tcp = tcp;
  return info;
}
