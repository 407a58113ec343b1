// The GGUF writer against an independent reader (@huggingface/gguf): every metadata type and array,
// tensor infos, offsets and alignment as ggml's reader requires them, the data bytes where the infos
// say, and refusals that leave no file behind.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf, GGMLQuantizationType, GGUFValueType } from '@huggingface/gguf';
import { afterAll, describe, expect, test } from 'vitest';
import { arr, bool, f32, GGML_TYPES, GgufError, ggufTensorBytes, i32, str, u32, writeGguf, type GgufTensor, type GgufValue } from './gguf.ts';

const scratch = mkdtempSync(join(tmpdir(), 'amnesia-gguf-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** `n` deterministic bytes, chunked in pieces of `chunk` (exercises chunk boundaries). */
function bytesTensor(name: string, type: GgufTensor['type'], ne: number[], chunk = 7): GgufTensor & { bytes: Uint8Array } {
  const n = ggufTensorBytes({ name, type, ne });
  const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + name.length) & 0xff);
  return {
    name,
    type,
    ne,
    bytes,
    data: function* () {
      for (let at = 0; at < n; at += chunk) yield bytes.subarray(at, Math.min(n, at + chunk));
    },
  };
}

const metadata: [string, GgufValue][] = [
  ['general.architecture', str('test')],
  ['u8', { type: 'uint8', value: 255 }],
  ['i8', { type: 'int8', value: -128 }],
  ['u16', { type: 'uint16', value: 65535 }],
  ['i16', { type: 'int16', value: -32768 }],
  ['u32', u32(4294967295)],
  ['i32', i32(-2147483648)],
  ['f32', f32(0.1)],
  ['f64', { type: 'float64', value: 0.1 }],
  ['b', bool(true)],
  ['s', str('héllo <|end|>')],
  ['u64', { type: 'uint64', value: 2n ** 64n - 1n }],
  ['i64', { type: 'int64', value: -(2n ** 63n) }],
  ['strings', arr('string', ['a', '', 'Ġ Ġ'])],
  ['ints', arr('int32', [1, -2, 3])],
  ['bools', arr('bool', [true, false])],
  ['floats', arr('float32', [1.5, -2])],
];

describe('writeGguf', () => {
  const tensors = [
    bytesTensor('a.f32', 'F32', [3]),
    bytesTensor('b.bf16', 'BF16', [5, 3]),
    bytesTensor('c.mxfp4', 'MXFP4', [64, 3, 2], 100),
    bytesTensor('d.f16', 'F16', [1, 1, 1, 1]),
  ];

  test.each([32, 64])('alignment %i: metadata, infos and data read back by @huggingface/gguf', async (alignment) => {
    const file = join(scratch, `all-${alignment}.gguf`);
    const meta: [string, GgufValue][] = alignment === 32 ? metadata : [...metadata, ['general.alignment', u32(alignment)]];
    writeGguf(file, meta, tensors, alignment);
    const r = await gguf(file, { allowLocalFile: true, typedMetadata: true });

    expect(r.typedMetadata.version).toEqual({ value: 3, type: GGUFValueType.UINT32 });
    expect(r.typedMetadata.tensor_count.value).toBe(BigInt(tensors.length));
    expect(r.typedMetadata.kv_count.value).toBe(BigInt(meta.length));
    const m = r.typedMetadata as Record<string, { value: unknown; type: GGUFValueType; subType?: GGUFValueType }>;
    expect(m.u8).toEqual({ value: 255, type: GGUFValueType.UINT8 });
    expect(m.i8).toEqual({ value: -128, type: GGUFValueType.INT8 });
    expect(m.u16).toEqual({ value: 65535, type: GGUFValueType.UINT16 });
    expect(m.i16).toEqual({ value: -32768, type: GGUFValueType.INT16 });
    expect(m.u32).toEqual({ value: 4294967295, type: GGUFValueType.UINT32 });
    expect(m.i32).toEqual({ value: -2147483648, type: GGUFValueType.INT32 });
    expect(m.f32).toEqual({ value: Math.fround(0.1), type: GGUFValueType.FLOAT32 });
    expect(m.f64).toEqual({ value: 0.1, type: GGUFValueType.FLOAT64 });
    expect(m.b).toEqual({ value: true, type: GGUFValueType.BOOL });
    expect(m.s).toEqual({ value: 'héllo <|end|>', type: GGUFValueType.STRING });
    expect(m.u64).toEqual({ value: 2n ** 64n - 1n, type: GGUFValueType.UINT64 });
    expect(m.i64).toEqual({ value: -(2n ** 63n), type: GGUFValueType.INT64 });
    expect(m.strings).toEqual({ value: ['a', '', 'Ġ Ġ'], type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING });
    expect(m.ints).toEqual({ value: [1, -2, 3], type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32 });
    expect(m.bools).toEqual({ value: [true, false], type: GGUFValueType.ARRAY, subType: GGUFValueType.BOOL });
    expect(m.floats).toEqual({ value: [1.5, -2], type: GGUFValueType.ARRAY, subType: GGUFValueType.FLOAT32 });

    // Infos: names, ne, types; offsets contiguous and aligned, as ggml's gguf_init requires.
    expect(r.tensorDataOffset % BigInt(alignment)).toBe(0n);
    const data = readFileSync(file);
    let expected = 0;
    tensors.forEach((t, i) => {
      const info = r.tensorInfos[i]!;
      expect(info.name).toBe(t.name);
      expect(info.shape.map(Number)).toEqual(t.ne);
      expect(info.dtype).toBe(GGML_TYPES[t.type].id);
      expect(Number(info.offset)).toBe(expected);
      const at = Number(r.tensorDataOffset) + expected;
      expect(Buffer.from(data.subarray(at, at + t.bytes.length)).equals(Buffer.from(t.bytes)), t.name).toBe(true);
      const padded = Math.ceil(t.bytes.length / alignment) * alignment;
      expect(data.subarray(at + t.bytes.length, at + padded).every((b) => b === 0)).toBe(true);
      expected += padded;
    });
    expect(data.length).toBe(Number(r.tensorDataOffset) + expected);
  });

  test('the type ids are ggml’s', () => {
    expect(GGML_TYPES.F32.id).toBe(GGMLQuantizationType.F32);
    expect(GGML_TYPES.F16.id).toBe(GGMLQuantizationType.F16);
    expect(GGML_TYPES.BF16.id).toBe(GGMLQuantizationType.BF16);
    expect(GGML_TYPES.MXFP4.id).toBe(GGMLQuantizationType.MXFP4);
    expect(ggufTensorBytes({ name: 'x', type: 'MXFP4', ne: [64, 3, 2] })).toBe(2 * 3 * 2 * 17);
  });

  test('the same input gives the same bytes', () => {
    writeGguf(join(scratch, 'same-1.gguf'), metadata, tensors);
    writeGguf(join(scratch, 'same-2.gguf'), metadata, tensors);
    expect(readFileSync(join(scratch, 'same-1.gguf')).equals(readFileSync(join(scratch, 'same-2.gguf')))).toBe(true);
  });

  const t1 = bytesTensor('t', 'F32', [2]);
  test.each<[string, ReadonlyArray<[string, GgufValue]>, GgufTensor[], number, RegExp]>([
    [
      'a duplicate key',
      [
        ['k', u32(1)],
        ['k', u32(2)],
      ],
      [],
      32,
      /duplicate metadata key k/,
    ],
    ['a duplicate tensor', [], [t1, t1], 32, /duplicate tensor name t/],
    ['a name of 64 bytes', [], [bytesTensor('n'.repeat(64), 'F32', [1])], 32, /64 bytes or longer/],
    [
      'a row that is not whole blocks',
      [],
      [{ name: 'q', type: 'MXFP4', ne: [48, 1], data: () => [] }],
      32,
      /ne\[0\] 48 is not a multiple of MXFP4's block of 32/,
    ],
    ['five dimensions', [], [{ name: 'q', type: 'F32', ne: [1, 1, 1, 1, 1], data: () => [] }], 32, /1 to 4 non-negative integers/],
    ['a negative uint32', [['k', u32(-1)]], [], 32, /k: -1 is not a valid uint32/],
    ['a fractional int32', [['k', i32(1.5)]], [], 32, /k: 1.5 is not a valid int32/],
    ['an int8 out of range', [['k', { type: 'int8', value: 200 }]], [], 32, /k: 200 is not a valid int8/],
    ['a number in a string array', [['k', arr('string', ['a', 1])]], [], 32, /k\[1\]: 1 is not a valid string/],
    ['an alignment that is not a power of two', [], [], 48, /alignment must be a power of two, got 48/],
    ['general.alignment that disagrees', [['general.alignment', u32(64)]], [], 32, /general.alignment must be the uint32 32/],
    [
      'too few data bytes',
      [],
      [{ name: 'short', type: 'F32', ne: [4], data: () => [new Uint8Array(15)] }],
      32,
      /tensor short: its data has 15 bytes, F32 \[4\] needs 16/,
    ],
    ['too many data bytes', [], [{ name: 'long', type: 'F32', ne: [4], data: () => [new Uint8Array(16), new Uint8Array(1)] }], 32, /its data has 17 bytes/],
  ])('refuses %s and leaves no file', (_what, meta, ts, alignment, message) => {
    const dir = mkdtempSync(join(scratch, 'bad-'));
    const file = join(dir, 'out.gguf');
    expect(() => writeGguf(file, meta, ts, alignment)).toThrow(GgufError);
    expect(() => writeGguf(file, meta, ts, alignment)).toThrow(message);
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});
