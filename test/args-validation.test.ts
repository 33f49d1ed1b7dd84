// Bad arguments: TypeError/RangeError naming the argument; listen throws, dial and read reject.
import assert from 'node:assert/strict';
import { dial, listen } from 'muxnet';
import type { DialOptions, ListenOptions, Network } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, rejectionOf, thrownBy } from './helpers/assert-errors';
import { connectPair, type Pair } from './helpers/servers';
import { Resources, describeError } from './helpers/util';

/** Calls dial, failing if it throws synchronously: bad arguments must reject instead. */
function dialNoThrow(network: unknown, address: unknown, options?: unknown): Promise<unknown> {
  try {
    return dial(network as Network, address as string, options as DialOptions);
  } catch (e) {
    assert.fail(`dial threw synchronously instead of rejecting: ${describeError(e)}`);
  }
}

/** The deadline argument is `t` in the API; a message may name it so or say "deadline". */
const kDeadlineArg = /deadline|^t:/i;

function listenBad(network: unknown, address: unknown, options?: unknown): unknown {
  return thrownBy(() => listen(network as Network, address as string, options as ListenOptions).close());
}

for (const cfg of loopConfigs()) {
  describe(`argument validation [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    describe('listen', () => {
      it('rejects an unknown network, naming network', () => {
        assertArgError(listenBad('udpx', '127.0.0.1:0', cfg.options), /network/i);
        assertArgError(listenBad(undefined, '127.0.0.1:0', cfg.options), /network/i);
      });

      it('rejects an address that is not host:port, naming address', () => {
        assertArgError(listenBad('tcp', 'nope', cfg.options), /address/i);
        assertArgError(listenBad('tcp', '', cfg.options), /address/i);
        assertArgError(listenBad('tcp', 42, cfg.options), /address/i);
      });

      it('rejects a port out of range, naming the port or address', () => {
        assertArgError(listenBad('tcp', '127.0.0.1:70000', cfg.options), /port|address/i);
        assertArgError(listenBad('tcp', '127.0.0.1:-1', cfg.options), /port|address/i);
      });

      it('rejects an unknown backend, naming backend', () => {
        assertArgError(listenBad('tcp', '127.0.0.1:0', { ...cfg.options, backend: 'no-such-backend' }), /backend/i);
      });

      it('rejects an unknown trigger or mode, naming it', () => {
        assertArgError(listenBad('tcp', '127.0.0.1:0', { ...cfg.options, trigger: 'sideways' }), /trigger/i);
        assertArgError(listenBad('tcp', '127.0.0.1:0', { ...cfg.options, mode: 'warp' }), /mode/i);
      });
    });

    describe('dial', () => {
      it('rejects a non-string address, naming address', async () => {
        assertArgError(await rejectionOf(dialNoThrow('tcp', 1234, cfg.options)), /address/i);
      });

      it('rejects an unknown network, naming network', async () => {
        assertArgError(await rejectionOf(dialNoThrow('bogus', '127.0.0.1:1', cfg.options)), /network/i);
      });

      it('rejects an address without a port, naming address', async () => {
        assertArgError(await rejectionOf(dialNoThrow('tcp', 'nope', cfg.options)), /address/i);
      });

      it('rejects a port out of range, naming the port or address', async () => {
        assertArgError(await rejectionOf(dialNoThrow('tcp', '127.0.0.1:65536', cfg.options)), /port|address/i);
      });

      it('rejects an unknown backend, naming backend', async () => {
        assertArgError(
          await rejectionOf(dialNoThrow('tcp', '127.0.0.1:1', { ...cfg.options, backend: 'no-such-backend' })),
          /backend/i,
        );
      });

      it('rejects a timeout that is not a number, naming timeout', async () => {
        assertArgError(await rejectionOf(dialNoThrow('tcp', '127.0.0.1:1', { ...cfg.options, timeout: 'soon' })), /timeout/i);
      });
    });

    describe('conn methods', () => {
      let pair: Pair;
      beforeEach(async () => {
        pair = res.add(await connectPair(cfg.options));
      });

      it('read rejects a buffer that is not a Uint8Array, naming the buffer', async () => {
        for (const bad of ['abc', [1, 2, 3], 16, null, new ArrayBuffer(8)]) {
          let p: Promise<unknown>;
          try {
            p = pair.client.read(bad as unknown as Uint8Array);
          } catch (e) {
            assert.fail(`read threw synchronously instead of rejecting: ${describeError(e)}`);
          }
          const err = await rejectionOf(p);
          assert.ok(err instanceof TypeError, `read(${String(bad)}): expected TypeError, got ${describeError(err)}`);
          assert.match(err.message, /buf/i);
        }
        // The conn is unharmed.
        await pair.server.write('k');
        const buf = new Uint8Array(1);
        assert.equal(await pair.client.read(buf), 1);
      });

      it('write rejects data that is neither a Uint8Array nor a string, naming data', async () => {
        for (const bad of [42, { length: 3 }, null]) {
          const err = await rejectionOf((async () => pair.client.write(bad as unknown as Uint8Array))());
          assertArgError(err, /data/i);
        }
      });

      it('setDeadline rejects a string, naming the deadline', () => {
        assertArgError(thrownBy(() => pair.client.setDeadline('tomorrow' as unknown as number)), kDeadlineArg);
        assertArgError(thrownBy(() => pair.client.setReadDeadline('soon' as unknown as number)), kDeadlineArg);
        assertArgError(thrownBy(() => pair.client.setWriteDeadline({} as unknown as number)), kDeadlineArg);
      });

      it('setDeadline rejects an invalid Date and NaN', () => {
        assertArgError(thrownBy(() => pair.client.setDeadline(new Date('not a date'))), kDeadlineArg);
        assertArgError(thrownBy(() => pair.client.setDeadline(Number.NaN)), kDeadlineArg);
      });
    });
  });
}
