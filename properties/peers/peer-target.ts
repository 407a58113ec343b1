// A peer as the target of a check: started on 127.0.0.1 and, where it starts in about a second
// (llama.cpp), replaced by a fresh server before each history — with a spare started ahead — as the
// embedded reference server is. Every history then starts cold, a failure is shrunk and replayed on
// the server it was found on, and cache transparency has its cold runs (each request alone on a
// fresh server). A peer that takes longer to start stays up for the whole check.
import type { TargetConnector } from '../../src/harness/check-target.ts';
import { withFlush } from '../../src/harness/cold-runs.ts';
import { httpTransport, type Exchange } from '../../src/harness/transport.ts';
import type { Peer, PeerSetting, RunningPeer } from './peers.ts';

export function peerTarget(peer: Peer, setting: PeerSetting, modelDir: string, log: string): TargetConnector {
  return async () => {
    const start = () => peer.start(setting, modelDir, log);
    let current: RunningPeer = await start();
    let spare: Promise<RunningPeer> | undefined = peer.restartable ? start() : undefined;
    // Started ahead and never used (the check ended first, or failed): still stopped at close.
    spare?.catch(() => undefined);
    const via = (x: Exchange, origin: boolean) => {
      const t = httpTransport(current.baseUrl);
      return origin ? t.sendOrigin(x) : t.send(x);
    };
    const name = `${peer.title} (${setting.name})${peer.restartable ? ', a fresh server for each history' : ''}`;
    const transport = { name, send: (x: Exchange) => via(x, false), sendOrigin: (x: Exchange) => via(x, true) };
    const restart = async () => {
      const old = current;
      current = await spare!;
      spare = start();
      spare.catch(() => undefined);
      await old.server.stop();
    };
    return {
      // A flush (a scenario's flush step, the probe's) is a restart too: nothing else empties every cache.
      transport: spare !== undefined ? withFlush(transport, async () => void (await restart())) : transport,
      ...(spare !== undefined && { restart }),
      async close() {
        await current.server.stop();
        const left = await spare?.catch(() => undefined);
        await left?.server.stop();
      },
    };
  };
}
