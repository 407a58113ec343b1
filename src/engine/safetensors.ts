// Safetensors container: a header reader that validates everything the engine relies on without
// reading the tensor data, and a streaming writer (used for the tiny test checkpoint).
//
// Layout: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then the data
// buffer; offsets are relative to the start of the buffer (byte 8 + N), row-major, little endian.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

/** A checkpoint that cannot be used: the message names the file and what is wrong with it. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** A safetensors file whose container is broken (header, offsets, truncation). */
export class SafetensorsError extends CheckpointError {
  override name = 'SafetensorsError';
}

/** Bytes per element of every dtype the safetensors format defines with a whole-byte size. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

export interface SafetensorsTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** [begin, end) relative to the data buffer, as written in the header. */
  dataOffsets: [number, number];
  /** Absolute byte offset in the file: 8 + header length + data_offsets[0]. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  /** N, the JSON header's length in bytes. */
  headerLength: number;
  /** 8 + N: where the data buffer starts. */
  dataStart: number;
  metadata: Record<string, string>;
  /** In header order. */
  tensors: Map<string, SafetensorsTensorInfo>;
}

/** Headers above this size are refused rather than read (the Rust reader's limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

function fail(file: string, message: string): never {
  throw new SafetensorsError(`${file}: ${message}`);
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function readExactly(fd: number, buf: Uint8Array, position: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * Reads and validates a safetensors header, reading only the first 8 + N bytes of the file.
 * Checks: N lies within the file, the JSON parses into an object, every tensor has a known dtype, an
 * integer shape and data_offsets whose length is prod(shape)·sizeof(dtype), ranges do not overlap,
 * and every tensor ends inside the file. Throws SafetensorsError naming the file otherwise.
 */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail(file, code === 'ENOENT' ? 'no such file' : `cannot open: ${(e as Error).message}`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < 8) fail(file, `too short for a safetensors file (size ${fileSize}, need at least 8 bytes)`);
    const lenBuf = Buffer.alloc(8);
    readExactly(fd, lenBuf, 0);
    const n64 = lenBuf.readBigUInt64LE(0);
    if (n64 > BigInt(fileSize - 8)) {
      fail(file, `header length ${n64} runs past the end of the file (size ${fileSize})`);
    }
    const headerLength = Number(n64);
    if (headerLength > MAX_HEADER_BYTES) {
      fail(file, `header length ${headerLength} is larger than the ${MAX_HEADER_BYTES}-byte limit`);
    }
    const headerBuf = Buffer.alloc(headerLength);
    if (readExactly(fd, headerBuf, 8) !== headerLength) fail(file, 'file shrank while reading the header');
    return parseHeader(file, fileSize, headerLength, headerBuf);
  } finally {
    closeSync(fd);
  }
}

function parseHeader(file: string, fileSize: number, headerLength: number, headerBuf: Buffer): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBuf));
  } catch (e) {
    fail(file, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    fail(file, 'header is not valid JSON: expected an object of tensors');
  }
  const dataStart = 8 + headerLength;
  const bufferSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        fail(file, '__metadata__ must be an object of strings');
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, `__metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      fail(file, `tensor ${name}: entry must be an object with dtype, shape and data_offsets`);
    }
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string' || DTYPE_SIZES[dtype] === undefined) {
      fail(file, `tensor ${name}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
      fail(file, `tensor ${name}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
      fail(file, `tensor ${name}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(file, `tensor ${name}: data_offsets [${begin}, ${end}] end before they begin`);
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const byteLength = elements * DTYPE_SIZES[dtype]!;
    if (!Number.isSafeInteger(byteLength) || end - begin !== byteLength) {
      fail(
        file,
        `tensor ${name}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} [${(shape as number[]).join(', ')}] needs ${byteLength}`,
      );
    }
    tensors.set(name, { name, dtype, shape: [...(shape as number[])], dataOffsets: [begin, end], offset: dataStart + begin, byteLength });
  }
  // Ranges: inside the file, and disjoint (checked in buffer order so the first culprit is reported).
  const byBegin = [...tensors.values()].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let prev: SafetensorsTensorInfo | undefined;
  for (const t of byBegin) {
    const [begin, end] = t.dataOffsets;
    if (end > bufferSize) {
      fail(file, `tensor ${t.name} ends at byte ${dataStart + end}, past the end of the file (size ${fileSize})`);
    }
    if (prev !== undefined && begin < prev.dataOffsets[1] && t.byteLength > 0) {
      fail(file, `tensors ${prev.name} and ${t.name} overlap (data_offsets [${prev.dataOffsets.join(', ')}] and [${begin}, ${end}])`);
    }
    if (t.byteLength > 0) prev = t;
  }
  return { file, fileSize, headerLength, dataStart, metadata, tensors };
}

export interface SafetensorsWriteTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** The tensor's bytes (little endian, row major), or a function producing them when written. */
  data: Uint8Array | (() => Uint8Array);
}

/**
 * Writes a safetensors file: header (JSON, padded with spaces to a multiple of 8 bytes, with
 * `__metadata__` when given), then each tensor's bytes in the given order. Tensors are written one
 * at a time, so with lazy `data` functions only one tensor is in memory at once.
 */
export function writeSafetensors(path: string, tensors: SafetensorsWriteTensor[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    const size = DTYPE_SIZES[t.dtype];
    if (size === undefined) throw new Error(`writeSafetensors: tensor ${t.name}: unknown dtype ${t.dtype}`);
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) {
      throw new Error(`writeSafetensors: duplicate or reserved tensor name ${t.name}`);
    }
    if (!t.shape.every((d) => isNonNegativeInt(d))) throw new Error(`writeSafetensors: tensor ${t.name}: bad shape [${t.shape.join(', ')}]`);
    const byteLength = t.shape.reduce((a, b) => a * b, 1) * size;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + byteLength] };
    sizes.push(byteLength);
    offset += byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(json.length), 0);

  const fd = openSync(path, 'w');
  try {
    writeAll(fd, lenBuf);
    writeAll(fd, json);
    tensors.forEach((t, i) => {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      if (data.byteLength !== sizes[i]) {
        throw new Error(`writeSafetensors: tensor ${t.name}: got ${data.byteLength} bytes, ${t.dtype} [${t.shape.join(', ')}] needs ${sizes[i]}`);
      }
      writeAll(fd, data);
    });
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) done += writeSync(fd, data, done, data.byteLength - done);
}
