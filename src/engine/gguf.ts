// A small GGUF v3 writer (llama.cpp's model file): typed metadata, tensor infos, then the tensors'
// bytes, each aligned. Followed: ggml's gguf.h / gguf.cpp (the reader llama.cpp uses) and gguf-py's
// constants.py / gguf_writer.py.
//
// Layout, all little endian:
//   "GGUF", u32 version 3, u64 tensor count, u64 metadata count;
//   metadata: string key, u32 value type, value (strings are u64 length + UTF-8 bytes; an array is
//     u32 element type, u64 count, elements);
//   tensor infos: string name, u32 n_dims, u64 ne[n_dims] (ggml order: ne[0] is the contiguous
//     dimension, the reverse of a row-major shape), u32 ggml type, u64 offset into the data section;
//   zero padding to the alignment (general.alignment, default 32), then the data section: each
//     tensor at its offset, followed by zero padding to the alignment. The reader insists that each
//     offset is exactly the padded end of the previous tensor, so tensors go in info order.
//
// Tensor data is streamed: each tensor's bytes come from a generator of chunks, written as they come,
// so a 20b-sized file never sits in memory.
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

export const GGUF_MAGIC = 'GGUF';
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME: a tensor name must be shorter (it is stored with its NUL). */
export const GGML_MAX_NAME = 64;

/** gguf.h `enum gguf_type`. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

export type GgufScalarType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'bool' | 'string' | 'uint64' | 'int64' | 'float64';

type Scalar = number | bigint | boolean | string;

/** A metadata value: one scalar, or an array of one scalar type (nested arrays are not written). */
export type GgufValue = { type: GgufScalarType; value: Scalar } | { type: 'array'; of: GgufScalarType; values: readonly Scalar[] };

const TYPE_IDS: Record<GgufScalarType, number> = {
  uint8: GgufValueType.UINT8,
  int8: GgufValueType.INT8,
  uint16: GgufValueType.UINT16,
  int16: GgufValueType.INT16,
  uint32: GgufValueType.UINT32,
  int32: GgufValueType.INT32,
  float32: GgufValueType.FLOAT32,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
  uint64: GgufValueType.UINT64,
  int64: GgufValueType.INT64,
  float64: GgufValueType.FLOAT64,
};

// Metadata constructors, named after gguf-py's writer methods.
export const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
export const i32 = (value: number): GgufValue => ({ type: 'int32', value });
export const f32 = (value: number): GgufValue => ({ type: 'float32', value });
export const bool = (value: boolean): GgufValue => ({ type: 'bool', value });
export const str = (value: string): GgufValue => ({ type: 'string', value });
export const arr = (of: GgufScalarType, values: readonly Scalar[]): GgufValue => ({ type: 'array', of, values });

/** The ggml tensor types this writer knows: id, elements per block, bytes per block (ggml.h, ggml.c type traits). */
export const GGML_TYPES = {
  F32: { id: 0, blockSize: 1, typeSize: 4 },
  F16: { id: 1, blockSize: 1, typeSize: 2 },
  BF16: { id: 30, blockSize: 1, typeSize: 2 },
  /** block_mxfp4 (ggml-common.h): u8 e (E8M0 scale), u8 qs[16]; element j in qs[j] low nibble, j+16 in its high nibble. */
  MXFP4: { id: 39, blockSize: 32, typeSize: 17 },
} as const;

export type GgmlTypeName = keyof typeof GGML_TYPES;

export interface GgufTensor {
  name: string;
  type: GgmlTypeName;
  /** ggml order: ne[0] first (the contiguous dimension), i.e. a row-major shape reversed. At most 4 dims. */
  ne: readonly number[];
  /** The tensor's bytes, in chunks of any size; together exactly `ggufTensorBytes(tensor)` bytes. */
  data: () => Iterable<Uint8Array>;
}

/** A bad argument to the writer (a programming error, or a model this file cannot hold). */
export class GgufError extends Error {
  override name = 'GgufError';
}

/** Bytes of a tensor's data (without padding). */
export function ggufTensorBytes(t: Pick<GgufTensor, 'name' | 'type' | 'ne'>): number {
  const { blockSize, typeSize } = GGML_TYPES[t.type];
  if (t.ne.length < 1 || t.ne.length > 4 || !t.ne.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new GgufError(`tensor ${t.name}: ne must be 1 to 4 non-negative integers, got [${t.ne.join(', ')}]`);
  }
  if (t.ne[0]! % blockSize !== 0) throw new GgufError(`tensor ${t.name}: ne[0] ${t.ne[0]} is not a multiple of ${t.type}'s block of ${blockSize}`);
  const bytes = (t.ne.reduce((a, b) => a * b, 1) / blockSize) * typeSize;
  if (!Number.isSafeInteger(bytes)) throw new GgufError(`tensor ${t.name}: too large`);
  return bytes;
}

const pad = (n: number, alignment: number): number => Math.ceil(n / alignment) * alignment;

/** Serialises values into growing buffers (the header: metadata and tensor infos). */
class ByteSink {
  private chunks: Buffer[] = [];
  private current = Buffer.alloc(1 << 16);
  private used = 0;
  length = 0;

  private room(n: number): Buffer {
    if (this.used + n > this.current.length) {
      this.chunks.push(this.current.subarray(0, this.used));
      this.current = Buffer.alloc(Math.max(1 << 16, n));
      this.used = 0;
    }
    return this.current;
  }

  u8(v: number): void {
    this.room(1).writeUInt8(v, this.used);
    this.advance(1);
  }
  u32(v: number): void {
    this.room(4).writeUInt32LE(v, this.used);
    this.advance(4);
  }
  u64(v: number | bigint): void {
    this.room(8).writeBigUInt64LE(BigInt(v), this.used);
    this.advance(8);
  }
  bytes(b: Uint8Array): void {
    this.room(b.length).set(b, this.used);
    this.advance(b.length);
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }
  /** One scalar of `type`; checks that the JS value fits it. */
  scalar(type: GgufScalarType, v: Scalar, where: string): void {
    const bad = (): never => {
      throw new GgufError(`${where}: ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)} is not a valid ${type}`);
    };
    const int = (lo: number, hi: number): number => (typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi ? v : bad());
    const big = (lo: bigint, hi: bigint): bigint => {
      const b = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : bad();
      return b >= lo && b <= hi ? b : bad();
    };
    const buf = this.room(8);
    const at = this.used;
    let size: number;
    switch (type) {
      case 'uint8':
        size = buf.writeUInt8(int(0, 0xff), at) - at;
        break;
      case 'int8':
        size = buf.writeInt8(int(-0x80, 0x7f), at) - at;
        break;
      case 'uint16':
        size = buf.writeUInt16LE(int(0, 0xffff), at) - at;
        break;
      case 'int16':
        size = buf.writeInt16LE(int(-0x8000, 0x7fff), at) - at;
        break;
      case 'uint32':
        size = buf.writeUInt32LE(int(0, 0xffffffff), at) - at;
        break;
      case 'int32':
        size = buf.writeInt32LE(int(-0x80000000, 0x7fffffff), at) - at;
        break;
      case 'uint64':
        size = buf.writeBigUInt64LE(big(0n, 0xffffffffffffffffn), at) - at;
        break;
      case 'int64':
        size = buf.writeBigInt64LE(big(-0x8000000000000000n, 0x7fffffffffffffffn), at) - at;
        break;
      case 'float32':
        size = buf.writeFloatLE(typeof v === 'number' ? v : bad(), at) - at;
        break;
      case 'float64':
        size = buf.writeDoubleLE(typeof v === 'number' ? v : bad(), at) - at;
        break;
      case 'bool':
        size = buf.writeUInt8(typeof v === 'boolean' ? Number(v) : bad(), at) - at;
        break;
      case 'string':
        if (typeof v !== 'string') bad();
        this.string(v as string);
        return;
    }
    this.advance(size);
  }
  private advance(n: number): void {
    this.used += n;
    this.length += n;
  }
  toBuffer(): Buffer {
    return Buffer.concat([...this.chunks, this.current.subarray(0, this.used)]);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) done += writeSync(fd, data, done, data.byteLength - done);
}

/** The header: magic, counts, metadata and tensor infos, padded to the alignment (the data section's start). */
export function ggufHeader(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[], alignment = GGUF_DEFAULT_ALIGNMENT): Buffer {
  if (!Number.isSafeInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new GgufError(`alignment must be a power of two, got ${alignment}`);
  }
  const sink = new ByteSink();
  sink.bytes(Buffer.from(GGUF_MAGIC, 'latin1'));
  sink.u32(GGUF_VERSION);
  sink.u64(tensors.length);
  sink.u64(metadata.length);

  const keys = new Set<string>();
  for (const [key, v] of metadata) {
    if (keys.has(key)) throw new GgufError(`duplicate metadata key ${key}`);
    keys.add(key);
    sink.string(key);
    if (v.type === 'array') {
      sink.u32(GgufValueType.ARRAY);
      sink.u32(TYPE_IDS[v.of]);
      sink.u64(v.values.length);
      v.values.forEach((x, i) => sink.scalar(v.of, x, `${key}[${i}]`));
    } else {
      sink.u32(TYPE_IDS[v.type]);
      sink.scalar(v.type, v.value, key);
    }
  }
  const alignKey = metadata.find(([k]) => k === 'general.alignment');
  if (alignKey !== undefined && !(alignKey[1].type === 'uint32' && alignKey[1].value === alignment)) {
    throw new GgufError(`general.alignment must be the uint32 ${alignment} this file is written with`);
  }

  const names = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new GgufError(`duplicate tensor name ${t.name}`);
    names.add(t.name);
    if (Buffer.byteLength(t.name, 'utf8') >= GGML_MAX_NAME) throw new GgufError(`tensor name ${t.name} is ${GGML_MAX_NAME} bytes or longer`);
    const bytes = ggufTensorBytes(t);
    sink.string(t.name);
    sink.u32(t.ne.length);
    for (const d of t.ne) sink.u64(d);
    sink.u32(GGML_TYPES[t.type].id);
    sink.u64(offset);
    offset += pad(bytes, alignment);
  }
  const header = sink.toBuffer();
  return Buffer.concat([header, Buffer.alloc(pad(header.length, alignment) - header.length)]);
}

/**
 * Writes a GGUF v3 file: the header, then each tensor's chunks as its generator yields them, padded
 * to the alignment. Written to a temporary file beside `path` and renamed into place, so `path` is
 * either the old file or the complete new one. Throws GgufError (and leaves nothing) when a
 * tensor's chunks do not add up to its size.
 */
export function writeGguf(
  path: string,
  metadata: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly GgufTensor[],
  alignment = GGUF_DEFAULT_ALIGNMENT,
): void {
  const header = ggufHeader(metadata, tensors, alignment);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    writeAll(fd, header);
    for (const t of tensors) {
      const want = ggufTensorBytes(t);
      let got = 0;
      for (const chunk of t.data()) {
        if (got + chunk.byteLength <= want) writeAll(fd, chunk);
        got += chunk.byteLength;
      }
      if (got !== want) throw new GgufError(`tensor ${t.name}: its data has ${got} bytes, ${t.type} [${t.ne.join(', ')}] needs ${want}`);
      writeAll(fd, Buffer.alloc(pad(want, alignment) - want));
    }
    ok = true;
  } finally {
    closeSync(fd);
    if (ok) renameSync(tmp, path);
    else rmSync(tmp, { force: true });
  }
}
