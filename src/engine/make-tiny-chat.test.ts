// The talking tiny model's folder comes from the committed delta, the same bytes every time: the
// delta fits the budget, every row the training data never uses is the one shared row, and a
// delta that is not one is refused with a clear error.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadCheckpoint, readModelConfig, readTensorBytes } from './checkpoint.ts';
import { makeTinyChatCheckpoint, TINY_CHAT_DELTA } from './make-tiny-chat.ts';
import { CheckpointError, readSafetensorsHeader, writeSafetensors } from './safetensors.ts';

/**
 * sha256 of the folder's model.safetensors. It changes only when the delta is retrained (then the
 * cache folder's name, taken from the delta's hash, changes too) or when the expansion changes.
 */
const MODEL_SHA256 = 'a26c96d7ac62ea338536edebd22ec92e3fdb1159086cfd0948511a4894f74128';

const scratch = mkdtempSync(join(tmpdir(), 'amnesia-make-tiny-chat-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('makeTinyChatCheckpoint', () => {
  const dir = join(scratch, 'a');

  test('the delta fits 8 MB and writes the same folder twice, with the pinned hash', () => {
    expect(statSync(TINY_CHAT_DELTA).size).toBeLessThanOrEqual(8 * 1024 * 1024);
    makeTinyChatCheckpoint(dir);
    makeTinyChatCheckpoint(join(scratch, 'b'));
    const a = sha256(join(dir, 'model.safetensors'));
    expect(sha256(join(scratch, 'b', 'model.safetensors'))).toBe(a);
    expect(a).toBe(MODEL_SHA256);
    for (const file of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      expect(readFileSync(join(dir, file), 'utf8')).toBe(readFileSync(join(scratch, 'b', file), 'utf8'));
    }
  });

  test('the folder loads as gpt-oss: the real vocabulary, sliding and full layers, MXFP4 experts', () => {
    const config = readModelConfig(dir);
    expect(config.vocabSize).toBe(201088);
    expect(config.slidingLayers.some(Boolean) && !config.slidingLayers.every(Boolean)).toBe(true);
    const spec = loadCheckpoint(dir);
    expect(spec.tensors.find((t) => t.name === 'model.layers.0.mlp.experts.gate_up_proj_blocks')?.dtype).toBe('U8');
  });

  test('used ids keep their trained rows; every other id has the shared row, in both matrices', () => {
    const delta = readSafetensorsHeader(TINY_CHAT_DELTA);
    const raw = readFileSync(TINY_CHAT_DELTA);
    const bytes = (name: string) => {
      const t = delta.tensors.get(name)!;
      return raw.subarray(t.offset, t.offset + t.byteLength);
    };
    const used = new Int32Array(new Uint8Array(bytes('used_ids')).buffer);
    const spec = loadCheckpoint(dir);
    const H = readModelConfig(dir).hiddenSize;
    const row = (m: Buffer, id: number) => m.subarray(id * H * 2, (id + 1) * H * 2);
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
      const m = readTensorBytes(spec, name);
      const trained = bytes(`${name}.used`);
      used.forEach((id, i) => expect(row(m, id).equals(trained.subarray(i * H * 2, (i + 1) * H * 2))).toBe(true));
      const isUsed = new Set(used);
      const shared = bytes(`${name}.unused`);
      for (let id = 0; id < 201088; id += 997) if (!isUsed.has(id)) expect(row(m, id).equals(shared), `${name} row ${id}`).toBe(true);
      expect(row(m, 201087).equals(shared)).toBe(true);
    }
  });

  test('refuses a file that is not a tiny-chat delta, and a delta missing a tensor, naming what is wrong', () => {
    const other = join(scratch, 'other.safetensors');
    writeSafetensors(other, [{ name: 'x', dtype: 'U8', shape: [1], data: new Uint8Array(1) }], { format: 'pt' });
    expect(() => makeTinyChatCheckpoint(join(scratch, 'c'), other)).toThrow(CheckpointError);
    expect(() => makeTinyChatCheckpoint(join(scratch, 'c'), other)).toThrow(/not a tiny-chat delta/);

    // The committed delta with one layer tensor's name changed.
    const broken = join(scratch, 'broken.safetensors');
    copyFileSync(TINY_CHAT_DELTA, broken);
    const file = readFileSync(broken);
    const n = Number(file.readBigUInt64LE(0));
    const header = file
      .subarray(8, 8 + n)
      .toString('utf8')
      .replace('"model.layers.1.self_attn.sinks"', '"model.layers.1.self_attn.sinkz"');
    writeFileSync(broken, Buffer.concat([file.subarray(0, 8), Buffer.from(header, 'utf8'), file.subarray(8 + n)]));
    expect(() => makeTinyChatCheckpoint(join(scratch, 'd'), broken)).toThrow(/no tensor model\.layers\.1\.self_attn\.sinks/);
  });
});
