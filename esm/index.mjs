// ESM entry: re-exports the CommonJS build, so both module systems share one instance.
import muxnet from '../dist/index.js';

export const {
  listen, dial, AbortError, backends, Conn, Listener, Addr,
  OpError, ErrClosed, ErrDeadlineExceeded, SystemError, errorIs,
} = muxnet;
export default muxnet;
