// The real servers amnesia is run on (spec/peers.md): how each is installed (install.sh, from the
// registries, into the cache folder), which version is there, and how it is started on 127.0.0.1 in
// each setting the matrix records: the one a deployment uses, then others that switch a suspect off.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { exportGguf } from '../../src/engine/export-gguf.ts';
import { basename, dirname, join } from 'node:path';
import { amnesiaCacheDir } from '../../src/engine/make-tiny.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';

export interface PeerSetting {
  name: string;
  /** What the setting is, in words (the matrix's settings column). */
  what: string;
  /** Flags added to the peer's own command line. */
  flags: string[];
}

export interface RunningPeer {
  /** The OpenAI base URL, ending /v1. */
  baseUrl: string;
  /** The model name requests ask for. */
  model: string;
  server: ServerProcess;
}

export interface Peer {
  name: string;
  title: string;
  /** The command that installs it. */
  install: string;
  /** The installed version, or undefined when it is not installed. */
  version(): string | undefined;
  settings: PeerSetting[];
  /** It starts in about a second: a check replaces it with a fresh one before each history (peer-target.ts). */
  restartable: boolean;
  /** Starts it; its output is appended to `log`. */
  start(setting: PeerSetting, modelDir: string, log: string): Promise<RunningPeer>;
}

/** Where install.sh puts a peer. */
export const peerDir = (name: string): string => join(amnesiaCacheDir(), 'peers', name);

/** A Python package's version in a peer's environment, or undefined. */
function pythonVersion(venv: string, pkg: string): string | undefined {
  const python = join(venv, 'bin', 'python');
  if (!existsSync(python)) return undefined;
  const r = spawnSync(python, ['-c', `import importlib.metadata as m; print(m.version(${JSON.stringify(pkg)}))`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** No hub, no update check, no telemetry: a peer reads only the model folder it is given. */
const OFFLINE = { HF_HUB_OFFLINE: '1', HF_HUB_DISABLE_UPDATE_CHECK: '1', HF_HUB_DISABLE_TELEMETRY: '1', TRANSFORMERS_OFFLINE: '1' };

/**
 * A peer of a Python environment (`<cache>/peers/NAME`), started beside the model folder so that the
 * model's name is the folder's own (no path of this machine in a report), offline, its hub folder its own.
 */
async function startPythonPeer(
  name: string,
  program: string,
  modelDir: string,
  log: string,
  args: (model: string, port: number) => string[],
): Promise<RunningPeer> {
  const venv = peerDir(name);
  const model = basename(modelDir);
  const server = await startServerProcess({
    command: join(venv, 'bin', program),
    cwd: dirname(modelDir),
    args: (port) => args(model, port),
    env: { ...process.env, ...OFFLINE, HF_HOME: join(venv, 'hf-home') },
    health: '/health',
    log,
  });
  return { baseUrl: `${server.origin}/v1`, model, server };
}

/**
 * Hugging Face `transformers serve`: the model preloaded from the folder, on the CPU. Requests must
 * name the model it was started with; it starts beside the folder, so that name is the folder's own
 * (no path of this machine in a report). It keeps no prefix cache; its one batching switch is continuous batching.
 */
const transformers: Peer = {
  name: 'transformers',
  title: 'Hugging Face transformers serve',
  install: 'properties/peers/install.sh transformers',
  version: () => pythonVersion(peerDir('transformers'), 'transformers'),
  // Loading torch and the model takes ~15 s: it stays up for the whole check.
  restartable: false,
  settings: [
    { name: 'default', what: 'as installed: one request at a time, no prefix cache', flags: [] },
    { name: 'continuous-batching', what: '--continuous-batching (paged attention, requests batched together)', flags: ['--continuous-batching'] },
  ],
  start: (setting, modelDir, log) =>
    startPythonPeer('transformers', 'transformers', modelDir, log, (model, port) => [
      'serve',
      model,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--device',
      'cpu',
      '--log-level',
      'info',
      ...setting.flags,
    ]),
};

/** The llama-server that install.sh built (a static binary). */
const llamaServer = (): string => join(peerDir('llama.cpp'), 'bin', 'llama-server');

/**
 * llama.cpp's `llama-server` on the model's GGUF (`amnesia model export-gguf`, written beside the
 * folder's safetensors once), served under the folder's name. As installed it renders with the
 * model's Jinja template, parses gpt-oss's harmony into reasoning and tool calls, keeps a prompt cache
 * (slots, and 8 GiB of host memory) and batches the slots' requests together.
 */
const llamaCpp: Peer = {
  name: 'llama.cpp',
  title: 'llama.cpp llama-server',
  install: 'properties/peers/install.sh llama.cpp',
  restartable: true,
  version() {
    if (!existsSync(llamaServer())) return undefined;
    // `version: 0.5.0-dev (build 1, commit 0c1e570)`: a tree without git history has no build number.
    const r = spawnSync(llamaServer(), ['--version'], { encoding: 'utf8' });
    const commit = /commit ([0-9a-f]+)/.exec(r.stdout + r.stderr)?.[1];
    const from = /llama-cpp-python==(\S+)/.exec(readFileSync(join(peerDir('llama.cpp'), 'source.txt'), 'utf8'))?.[1];
    return `commit ${commit ?? 'unknown'} (the tree in llama-cpp-python ${from ?? '?'})`;
  },
  settings: [
    { name: 'default', what: 'as installed: prompt cache on (slots and host memory), parallel slots batched together', flags: [] },
    { name: 'no-prompt-cache', what: '--no-cache-prompt --cache-ram 0 (no reuse of an earlier prompt)', flags: ['--no-cache-prompt', '--cache-ram', '0'] },
    {
      name: 'serial',
      what: '-np 1 --no-cache-prompt --cache-ram 0 (one slot: no batching and no prompt cache)',
      flags: ['-np', '1', '--no-cache-prompt', '--cache-ram', '0'],
    },
  ],
  async start(setting, modelDir, log) {
    const gguf = join(modelDir, 'model.gguf');
    if (!existsSync(gguf)) exportGguf(modelDir, gguf);
    const model = basename(modelDir);
    // Only the flags below decide its settings: none of its LLAMA_ARG_* variables is passed on.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LLAMA_ARG_')));
    const server = await startServerProcess({
      command: llamaServer(),
      args: (port) => ['-m', gguf, '--alias', model, '--host', '127.0.0.1', '--port', String(port), ...setting.flags],
      env,
      health: '/health',
      log,
    });
    return { baseUrl: `${server.origin}/v1`, model, server };
  },
};

/**
 * mlx-lm's server (`python -m mlx_lm server`), the engine exo runs on Apple silicon, here on MLX's
 * CPU backend: the model folder loaded as it is (mlx-lm reads gpt-oss's MXFP4 experts), rendered with
 * its chat template, harmony parsed into reasoning and tool calls. As installed it keeps an LRU cache
 * of 10 prompts' KV and batches up to 32 requests' decoding (and 8 prompts' prefill) together.
 */
const mlxLm: Peer = {
  name: 'mlx-lm',
  title: 'mlx-lm server (MLX CPU)',
  install: 'properties/peers/install.sh mlx-lm',
  version: () => pythonVersion(peerDir('mlx-lm'), 'mlx-lm'),
  // Importing MLX and loading take a few seconds: it stays up for the whole check.
  restartable: false,
  settings: [
    { name: 'default', what: 'as installed: an LRU cache of 10 prompts, up to 32 requests decoded together', flags: [] },
    { name: 'no-prompt-cache', what: '--prompt-cache-size 0 (no reuse of an earlier prompt)', flags: ['--prompt-cache-size', '0'] },
    {
      name: 'serial',
      what: '--decode-concurrency 1 --prompt-concurrency 1 --prompt-cache-size 0 (one request at a time, no prompt cache)',
      flags: ['--decode-concurrency', '1', '--prompt-concurrency', '1', '--prompt-cache-size', '0'],
    },
  ],
  start: (setting, modelDir, log) =>
    startPythonPeer('mlx-lm', 'python', modelDir, log, (model, port) => [
      '-m',
      'mlx_lm',
      'server',
      '--model',
      model,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      ...setting.flags,
    ]),
};

export const PEERS: readonly Peer[] = [llamaCpp, transformers, mlxLm];
