/**
 * The file system as the engine sees it. Everything the engine does to disk goes through this
 * interface so tests can substitute a layer that drops whatever was not fsynced (power loss),
 * fails an fsync, or fills the disk. `nodeFileSystem` is the real one.
 *
 * Contract (what a power-loss layer must model): data appended to a file is durable only after
 * `sync()` on that handle returns; a created, renamed or deleted directory entry is durable only
 * after `syncDir()` on its directory returns.
 */
import { constants as fsConstants, readSync, writeSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

export interface FileHandle {
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; returns bytes read. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /**
   * Appends at the end of the file (handles opened for 'append' or 'write'). Once it settles
   * the caller may reuse data (the engine writes every group commit from one buffer).
   */
  append(data: Buffer): Promise<void>;
  /**
   * Optional synchronous append with the same meaning as append() (data reaches the OS, not
   * the disk). The engine uses it for commit-log records when present: one write(2) costs a
   * few microseconds, while an async write pays a thread-pool round trip per group commit
   * (measured: most of the batched-write latency under load). Layers that do not implement it
   * get the async path.
   */
  appendSync?(data: Buffer): void;
  /**
   * Optional synchronous read with the same meaning as read(). The engine uses it (unless
   * EngineOptions.syncReads is false) for point reads that miss the block cache: a 4 KiB
   * pread served by the page cache takes microseconds, an async read a thread-pool round trip.
   */
  readSync?(buffer: Buffer, offset: number, length: number, position: number): number;
  sync(): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export type OpenMode =
  | 'read' // existing file, read only
  | 'append' // create if missing, writes go to the end
  | 'write'; // create or truncate, writes go to the end

export interface FileSystem {
  open(file: string, mode: OpenMode): Promise<FileHandle>;
  readFile(file: string): Promise<Buffer>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  truncate(file: string, length: number): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  /** Creates the directory and its parents; no error if it exists. */
  mkdir(dir: string): Promise<void>;
  exists(file: string): Promise<boolean>;
  /** fsyncs the directory so entries created, renamed or removed in it are durable. */
  syncDir(dir: string): Promise<void>;
}

class NodeFileHandle implements FileHandle {
  constructor(private readonly fh: fsp.FileHandle) {}
  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.fh.read(buffer, offset, length, position);
    return bytesRead;
  }
  async append(data: Buffer): Promise<void> {
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await this.fh.write(data, written, data.length - written);
      written += bytesWritten;
    }
  }
  readSync(buffer: Buffer, offset: number, length: number, position: number): number {
    return readSync(this.fh.fd, buffer, offset, length, position);
  }
  appendSync(data: Buffer): void {
    let written = 0;
    while (written < data.length) written += writeSync(this.fh.fd, data, written, data.length - written);
  }
  sync(): Promise<void> {
    // fdatasync: flushes the data and the metadata needed to read it back (the file size),
    // which is what sync() promises; skipping the mtime update saves a journal write per call.
    return this.fh.datasync();
  }
  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

// 'write' is O_TRUNC plus O_APPEND (not Node's 'w'): writes go to the end of the file as the
// contract says, even after the file was truncated or extended by name while the handle was open.
const { O_WRONLY, O_CREAT, O_TRUNC, O_APPEND } = fsConstants;
const FLAGS: Record<OpenMode, string | number> = { read: 'r', append: 'a', write: O_WRONLY | O_CREAT | O_TRUNC | O_APPEND };

export const nodeFileSystem: FileSystem = {
  async open(file, mode) {
    return new NodeFileHandle(await fsp.open(file, FLAGS[mode]));
  },
  readFile: (file) => fsp.readFile(file),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (file) => fsp.unlink(file),
  truncate: (file, length) => fsp.truncate(file, length),
  readdir: (dir) => fsp.readdir(dir),
  async mkdir(dir) {
    await fsp.mkdir(dir, { recursive: true });
  },
  async exists(file) {
    try {
      await fsp.access(file);
      return true;
    } catch {
      return false;
    }
  },
  async syncDir(dir) {
    const fh = await fsp.open(path.resolve(dir), 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};
