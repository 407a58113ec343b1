// The talking tiny gpt-oss (issue 15): a model of the real architecture, trained once and
// deterministically by golden/tiny-chat/train.py on conversations rendered by the project's own
// harmony renderer, so it reasons briefly, calls declared tools with JSON arguments copied from the
// question, and answers with the tool's result. The random tiny model (make-tiny.ts) stays for layout
// and kernel tests.
//
// Only what training made is committed: golden/tiny-chat/tiny-chat-delta.safetensors holds the ids
// the training data uses, their embedding and lm_head rows, one shared row each for every other id,
// and every layer's tensors in checkpoint form (bf16, MXFP4 blocks and scales); its metadata carries
// the config. This module expands it into the full Hugging Face folder, the same bytes every time.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectedTensors, parseModelConfig } from './checkpoint.ts';
import { ensureCheckpoint, writeCheckpointFolder } from './checkpoint-folder.ts';
import { amnesiaCacheDir } from './make-tiny.ts';
import { CheckpointError, readSafetensorsHeader, type SafetensorsWriteTensor } from './safetensors.ts';

export const TINY_CHAT_DELTA_FORMAT = 'amnesia-tiny-chat-delta/1';

/** The committed delta, beside the training script that wrote it (the package ships it). */
export const TINY_CHAT_DELTA = fileURLToPath(new URL('../../golden/tiny-chat/tiny-chat-delta.safetensors', import.meta.url));

interface Delta {
  config: Record<string, unknown>;
  tensors: Map<string, { dtype: string; shape: number[]; bytes: Buffer }>;
}

function readDelta(file: string): Delta {
  const header = readSafetensorsHeader(file);
  if (header.metadata.format !== TINY_CHAT_DELTA_FORMAT) {
    throw new CheckpointError(`${file}: not a tiny-chat delta (format ${String(header.metadata.format)}, expected ${TINY_CHAT_DELTA_FORMAT})`);
  }
  const config = JSON.parse(header.metadata.config ?? 'null') as unknown;
  if (typeof config !== 'object' || config === null) throw new CheckpointError(`${file}: the metadata holds no config`);
  const data = readFileSync(file);
  const tensors = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
  for (const [name, t] of header.tensors) tensors.set(name, { dtype: t.dtype, shape: t.shape, bytes: data.subarray(t.offset, t.offset + t.byteLength) });
  return { config: config as Record<string, unknown>, tensors };
}

function take(delta: Delta, file: string, name: string, dtype: string, shape: number[]): Buffer {
  const t = delta.tensors.get(name);
  if (t === undefined) throw new CheckpointError(`${file}: no tensor ${name}`);
  if (t.dtype !== dtype || t.shape.join(',') !== shape.join(',')) {
    throw new CheckpointError(`${file}: ${name} is ${t.dtype} [${t.shape.join(', ')}], expected ${dtype} [${shape.join(', ')}]`);
  }
  return t.bytes;
}

/** A [V, H] bf16 matrix: the used ids' rows from the delta, the shared row everywhere else. */
function expandRows(usedIds: Int32Array, used: Buffer, shared: Buffer, vocab: number, hidden: number): Uint8Array {
  const rowBytes = hidden * 2;
  const out = new Uint8Array(vocab * rowBytes);
  for (let id = 0; id < vocab; id++) out.set(shared, id * rowBytes);
  usedIds.forEach((id, i) => out.set(used.subarray(i * rowBytes, (i + 1) * rowBytes), id * rowBytes));
  return out;
}

/** Writes the talking tiny model's Hugging Face folder into `outDir` from the delta (default: the committed one). */
export function makeTinyChatCheckpoint(outDir: string, deltaFile = TINY_CHAT_DELTA): void {
  const delta = readDelta(deltaFile);
  const config = parseModelConfig(delta.config, `${deltaFile} (config)`);
  const V = config.vocabSize;
  const H = config.hiddenSize;
  const ids = delta.tensors.get('used_ids');
  if (ids === undefined || ids.dtype !== 'I32' || ids.shape.length !== 1) throw new CheckpointError(`${deltaFile}: no I32 vector used_ids`);
  const usedIds = new Int32Array(ids.bytes.buffer.slice(ids.bytes.byteOffset, ids.bytes.byteOffset + ids.bytes.byteLength));
  usedIds.forEach((id, i) => {
    if (id < 0 || id >= V || (i > 0 && id <= usedIds[i - 1]!)) throw new CheckpointError(`${deltaFile}: used_ids must ascend within [0, ${V})`);
  });
  const U = usedIds.length;
  const rows = (name: string) => () =>
    expandRows(usedIds, take(delta, deltaFile, `${name}.used`, 'BF16', [U, H]), take(delta, deltaFile, `${name}.unused`, 'BF16', [H]), V, H);
  const tensors: SafetensorsWriteTensor[] = expectedTensors(config).map((t) => {
    const shape = t.shape.map((d) => d.value);
    if (t.name === 'model.embed_tokens.weight' || t.name === 'lm_head.weight') return { name: t.name, dtype: 'BF16', shape, data: rows(t.name) };
    const dtype = t.dtypes[0]!;
    return { name: t.name, dtype, shape, data: take(delta, deltaFile, t.name, dtype, shape) };
  });
  writeCheckpointFolder(outDir, delta.config, tensors);
}

/** Bump when the folder written from one delta changes (v2: config.json writes float fields as floats). */
export const TINY_CHAT_FOLDER_VERSION = 'v2';

/** Where ensureTinyChatCheckpoint keeps the model: `<cache>/models/tiny-chat-v2-<first 12 hex of the delta's sha256>`. */
export function tinyChatModelDir(deltaFile = TINY_CHAT_DELTA): string {
  const sha = createHash('sha256').update(readFileSync(deltaFile)).digest('hex');
  return join(amnesiaCacheDir(), 'models', `tiny-chat-${TINY_CHAT_FOLDER_VERSION}-${sha.slice(0, 12)}`);
}

/** The talking tiny model's folder, written from the committed delta on first use (safe when processes race). */
export async function ensureTinyChatCheckpoint(): Promise<string> {
  return ensureCheckpoint(tinyChatModelDir(), (dir) => makeTinyChatCheckpoint(dir));
}
