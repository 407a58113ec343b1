// Opens a model for serving: the tiny random test checkpoint (`tiny`), the talking tiny model
// (`tiny-chat`), each generated into the cache directory on first use, or a gpt-oss checkpoint
// directory in Hugging Face layout, with a runtime over it.
import { createHash } from 'node:crypto';
import { basename, resolve } from 'node:path';
import { loadCheckpoint } from '../engine/checkpoint.ts';
import { ensureTinyCheckpoint, TINY_VERSION } from '../engine/make-tiny.ts';
import { ensureTinyChatCheckpoint } from '../engine/make-tiny-chat.ts';
import { loadNativeAddon } from '../engine/native-addon.ts';
import { Runtime, type RuntimeOptions } from '../engine/runtime.ts';
import type { GrammarMode } from './completion-plan.ts';

export const TINY_MODEL_ID = 'gpt-oss-tiny';
export const TINY_CHAT_MODEL_ID = 'gpt-oss-tiny-chat';

/**
 * What `amnesia serve`, `startLocalServer` and the embedded target of `amnesia check` serve unless
 * told otherwise: the talking model, which answers in well-formed harmony as a real gpt-oss does.
 * Tests that rely on the random model's noisy outputs (every state leak shows in its tokens) name
 * `tiny`.
 */
export const DEFAULT_MODEL = 'tiny-chat';

export interface OpenedModel {
  /** The id clients name in `model` (and /v1/models lists). */
  id: string;
  runtime: Runtime;
  /**
   * Which requests are held to well-formed harmony by default: on the tiny random model those with
   * tools (its tool calls would rarely be well-formed otherwise); on real checkpoints, which speak
   * harmony, only those whose tool_choice needs enforcing.
   */
  grammar: GrammarMode;
  /** `system_fingerprint`: changes whenever the weights or the engine configuration do. */
  fingerprint: string;
  close(): Promise<void>;
}

export async function openModel(source: string, options: RuntimeOptions = {}): Promise<OpenedModel> {
  const tiny = source === 'tiny';
  const chat = source === 'tiny-chat';
  // The talking model's folder is named after its delta's hash, so the folder name tells its version.
  const dir = tiny ? await ensureTinyCheckpoint(1) : chat ? await ensureTinyChatCheckpoint() : resolve(source);
  const spec = loadCheckpoint(dir);
  const addon = loadNativeAddon();
  const model = new addon.NativeModel(spec);
  const runtime = new Runtime(model, spec, options);
  const fingerprint = createHash('sha256')
    // The kernel set changes the last bits of the logits, and so can change sampled tokens.
    .update(
      JSON.stringify({
        config: spec.config,
        tiny: tiny ? TINY_VERSION : chat ? basename(dir) : null,
        simd: addon.simd(),
        options: { ...options, failpoints: [...runtime.failpoints] },
      }),
    )
    .digest('hex')
    .slice(0, 10);
  return {
    id: tiny ? TINY_MODEL_ID : chat ? TINY_CHAT_MODEL_ID : basename(dir),
    runtime,
    grammar: tiny ? 'tools' : 'tool-choice',
    fingerprint: `fp_${fingerprint}`,
    close: async () => {
      await runtime.close();
      model.close();
    },
  };
}
