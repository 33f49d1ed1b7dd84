// muxnet: Go's net API for Node.js over native select/poll/epoll loops.
export { listen, dial, AbortError } from './net';
export type { Network, ListenOptions, DialOptions } from './net';
export { backends, backendCapabilities } from './backends';
export type { BackendCapabilities, LoopOptions } from './backends';
export { Conn } from './conn';
export type { Chunk, KeepAliveOptions } from './conn';
export { Listener } from './listener';
export { PacketConn, listenPacket } from './packet';
export { UnixConn } from './unix-conn';
export type { HandlesRead, PassableHandle } from './unix-conn';
export type { Datagram, ListenPacketOptions, OutgoingDatagram, PacketNetwork } from './packet';
export type { Handler, NodeServer, ServeOptions } from './listener';
export { ConnStream } from './stream';
export type { ConnStreamOptions } from './stream';
export { Addr } from './addr';
export { connections, stats } from './inspect';
export type { ConnInfo, LoopStats, SocketInfo, TcpInfo } from './info';
export { OpError, ErrClosed, ErrDeadlineExceeded, SystemError, errorIs } from './errors';
