/**
 * FaultFileSystem: an in-memory FileSystem (src/storage/fs.ts) that models what survives a power
 * loss, in the spirit of LevelDB's fault_injection_test.
 *
 * Durability model (the contract in fs.ts, nothing more generous):
 *   - A file (inode) has `current` bytes (what reads see) and `durable` bytes (what a power loss
 *     keeps). `FileHandle.sync()` makes durable = current for that inode.
 *   - The namespace (name -> inode) has a current view and a durable view per directory.
 *     Creating a file (open 'write'/'append' of a new name), rename and unlink change only the
 *     current view; `syncDir(dir)` copies the current entries of `dir` into the durable view.
 *     So a file created and fsynced but whose directory was never synced is gone after a crash,
 *     and an unlinked-but-not-dir-synced file comes back.
 *   - Directories themselves (mkdir) are durable at once: the engine's directory is created
 *     before any test crash point, and modelling it would only test mkdir -p.
 *   - `truncate(file)` changes current bytes only, like a real truncate without fsync.
 *
 * crash() returns the file system a rebooted machine would see:
 *   - mode 'drop-unsynced': every file holds exactly its durable bytes.
 *   - mode 'keep-random-prefix': a file whose current bytes extend its durable bytes (appends
 *     since the last sync) keeps a random-length prefix of those appends, as a real disk may
 *     have written some pages before the power went. Files rewritten or truncated since their
 *     last sync keep their durable bytes.
 * After crash() the old instance is dead: every call on it or on its handles rejects with
 * EIO, so an engine still running on it can neither see nor change the new state.
 *
 * Fault injection: failNextSync() (the next file sync rejects with EIO and makes nothing
 * durable), failWritesAfterBytes(n) (appends beyond n more bytes write what fits and reject with
 * ENOSPC), crashAfterOps(n) (freeze the durable image after n more mutating calls, then behave
 * as dead), and an `onMutation` hook that sees every mutating call.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { FileHandle, FileSystem, OpenMode } from '../../src/storage/fs.js';

export type CrashMode = 'drop-unsynced' | 'keep-random-prefix';

/** Mutating calls, as seen by onMutation and counted by crashAfterOps. */
export type MutationKind = 'create' | 'truncate-open' | 'append' | 'sync' | 'rename' | 'unlink' | 'truncate' | 'syncDir';

export interface Mutation {
  kind: MutationKind;
  file: string;
  bytes?: number;
}

/** A Node-style file-system error (err.code like 'ENOENT'), which is what engines test for. */
export class FsError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
    this.name = 'FsError';
  }
}

interface FrozenImage {
  files: Map<string, { durable: Buffer; current: Buffer }>;
  dirs: Set<string>;
}

interface Inode {
  readonly id: number;
  current: Buffer;
  durable: Buffer;
}

/** A seeded PRNG (mulberry32) so a crash image is reproducible from a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function norm(p: string): string {
  return path.resolve(p);
}

class FaultFileHandle implements FileHandle {
  private closed = false;
  /** Present when the file system offers the optional synchronous calls (as nodeFileSystem does). */
  appendSync?: (data: Buffer) => void;
  readSync?: (buffer: Buffer, offset: number, length: number, position: number) => number;

  constructor(
    private readonly fs: FaultFileSystem,
    private readonly inode: Inode,
    private readonly name: string,
    private readonly writable: boolean,
  ) {
    if (fs.syncMethods) {
      this.appendSync = (data) => this.doAppend(data);
      this.readSync = (buffer, offset, length, position) => this.doRead(buffer, offset, length, position);
    }
  }

  private check(): void {
    this.fs.checkAlive();
    if (this.closed) throw new FsError('EBADF', `handle on ${this.name} is closed`);
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    return this.doRead(buffer, offset, length, position);
  }

  private doRead(buffer: Buffer, offset: number, length: number, position: number): number {
    this.check();
    // nodeFileSystem opens 'append'/'write' handles with O_WRONLY: reading them fails there
    // (Node answers a zero-length read without a syscall).
    if (length === 0) return 0;
    if (this.writable) throw new FsError('EBADF', `${this.name} is open write-only`);
    assert.ok(offset >= 0 && length >= 0 && offset + length <= buffer.length, 'read outside the buffer');
    assert.ok(position >= 0, 'negative read position');
    const src = this.inode.current;
    if (position >= src.length) return 0;
    const n = Math.min(length, src.length - position);
    src.copy(buffer, offset, position, position + n);
    return n;
  }

  async append(data: Buffer): Promise<void> {
    this.doAppend(data);
  }

  private doAppend(data: Buffer): void {
    // nodeFileSystem's append loops while bytes remain: an empty one makes no syscall and so
    // succeeds on any handle, even a read-only or closed one.
    if (data.length === 0) return;
    this.check();
    if (!this.writable) throw new FsError('EBADF', `${this.name} is open read-only`);
    this.fs.beforeMutation({ kind: 'append', file: this.name, bytes: data.length });
    const allowed = this.fs.takeWriteBudget(data.length);
    if (allowed > 0) this.inode.current = Buffer.concat([this.inode.current, data.subarray(0, allowed)]);
    if (allowed < data.length) throw new FsError('ENOSPC', `no space left writing ${this.name}`);
  }

  async sync(): Promise<void> {
    this.check();
    this.fs.beforeMutation({ kind: 'sync', file: this.name });
    if (this.fs.takeSyncFailure()) throw new FsError('EIO', `fsync of ${this.name} failed (injected)`);
    this.inode.durable = Buffer.from(this.inode.current);
    this.fs.counters.syncs++;
  }

  async size(): Promise<number> {
    this.check();
    return this.inode.current.length;
  }

  async close(): Promise<void> {
    // Closing is allowed on a dead file system: the engine's cleanup should not be the thing
    // that fails, and closing changes nothing durable.
    this.closed = true;
  }
}

export interface FaultCounters {
  appendedBytes: number;
  appends: number;
  syncs: number;
  syncDirs: number;
  mutations: number;
}

export interface FaultFileSystemOptions {
  /**
   * Offer FileHandle.appendSync/readSync (the optional synchronous calls nodeFileSystem has;
   * engines take a different code path with them). Default true.
   */
  syncMethods?: boolean;
}

export class FaultFileSystem implements FileSystem {
  readonly syncMethods: boolean;
  /** Current namespace: absolute file path -> inode. */
  private readonly files = new Map<string, Inode>();
  /** Durable namespace: absolute file path -> inode. */
  private readonly durableFiles = new Map<string, Inode>();
  private readonly dirs = new Set<string>([norm('/')]);
  private nextInode = 1;
  private dead: string | null = null;
  private syncFailures = 0;
  private writeBudgetBytes = Number.POSITIVE_INFINITY;
  private crashCountdown = Number.POSITIVE_INFINITY;
  /** The durable image frozen by crashAfterOps, taken when the countdown hit zero. */
  private frozen: FrozenImage | null = null;
  readonly counters: FaultCounters = { appendedBytes: 0, appends: 0, syncs: 0, syncDirs: 0, mutations: 0 };
  /** Sees every mutating call before it happens. */
  onMutation: ((m: Mutation) => void) | undefined;

  constructor(options: FaultFileSystemOptions = {}) {
    this.syncMethods = options.syncMethods ?? true;
  }

  // ---- fault injection -------------------------------------------------------------------

  /** The next `count` file syncs reject with EIO (and make nothing durable). */
  failNextSync(count = 1): void {
    this.syncFailures += count;
  }

  /** Appends beyond `bytes` more bytes write the part that fits and reject with ENOSPC. */
  failWritesAfterBytes(bytes: number): void {
    assert.ok(bytes >= 0);
    this.writeBudgetBytes = bytes;
  }

  /**
   * Power loss after `ops` more mutating calls: the durable state at that moment is frozen (the
   * call that hits zero does not happen) and from then on every call rejects with EIO.
   * crash() then returns the frozen image. ops = 0 crashes at the next mutating call.
   */
  crashAfterOps(ops: number): void {
    assert.ok(ops >= 0);
    this.crashCountdown = ops;
  }

  /** True once crashAfterOps fired. */
  get hasCrashed(): boolean {
    return this.frozen !== null;
  }

  // ---- hooks used by handles -------------------------------------------------------------

  checkAlive(): void {
    if (this.dead !== null) throw new FsError('EIO', `file system is gone (${this.dead})`);
  }

  beforeMutation(m: Mutation): void {
    this.checkAlive();
    if (this.crashCountdown <= 0) {
      this.frozen = this.captureDurable();
      this.dead = 'simulated power loss';
      throw new FsError('EIO', `simulated power loss before ${m.kind} ${m.file}`);
    }
    this.crashCountdown--;
    this.counters.mutations++;
    this.onMutation?.(m);
    if (m.kind === 'append') {
      this.counters.appends++;
      this.counters.appendedBytes += m.bytes ?? 0;
    }
  }

  takeSyncFailure(): boolean {
    if (this.syncFailures <= 0) return false;
    this.syncFailures--;
    return true;
  }

  takeWriteBudget(bytes: number): number {
    const allowed = Math.min(bytes, this.writeBudgetBytes);
    this.writeBudgetBytes -= allowed;
    return allowed;
  }

  // ---- FileSystem ------------------------------------------------------------------------

  async open(file: string, mode: OpenMode): Promise<FileHandle> {
    this.checkAlive();
    const name = norm(file);
    if (this.dirs.has(name)) throw new FsError('EISDIR', `${name} is a directory`);
    let inode = this.files.get(name);
    if (mode === 'read') {
      if (!inode) throw new FsError('ENOENT', `no such file ${name}`);
      return new FaultFileHandle(this, inode, name, false);
    }
    if (!this.dirs.has(path.dirname(name))) throw new FsError('ENOENT', `no such directory ${path.dirname(name)}`);
    if (!inode) {
      this.beforeMutation({ kind: 'create', file: name });
      inode = { id: this.nextInode++, current: Buffer.alloc(0), durable: Buffer.alloc(0) };
      this.files.set(name, inode);
    } else if (mode === 'write') {
      this.beforeMutation({ kind: 'truncate-open', file: name });
      inode.current = Buffer.alloc(0);
    }
    return new FaultFileHandle(this, inode, name, true);
  }

  async readFile(file: string): Promise<Buffer> {
    this.checkAlive();
    const name = norm(file);
    if (this.dirs.has(name)) throw new FsError('EISDIR', `${name} is a directory`);
    const inode = this.files.get(name);
    if (!inode) throw new FsError('ENOENT', `no such file ${name}`);
    return Buffer.from(inode.current);
  }

  async rename(from: string, to: string): Promise<void> {
    this.checkAlive();
    const src = norm(from);
    const dst = norm(to);
    const inode = this.files.get(src);
    if (!inode) throw new FsError('ENOENT', `no such file ${src}`);
    if (!this.dirs.has(path.dirname(dst))) throw new FsError('ENOENT', `no such directory ${path.dirname(dst)}`);
    if (this.dirs.has(dst)) throw new FsError('EISDIR', `${dst} is a directory`);
    this.beforeMutation({ kind: 'rename', file: `${src} -> ${dst}` });
    this.files.delete(src);
    this.files.set(dst, inode);
  }

  async unlink(file: string): Promise<void> {
    this.checkAlive();
    const name = norm(file);
    if (!this.files.has(name)) throw new FsError('ENOENT', `no such file ${name}`);
    this.beforeMutation({ kind: 'unlink', file: name });
    this.files.delete(name);
  }

  async truncate(file: string, length: number): Promise<void> {
    this.checkAlive();
    const name = norm(file);
    const inode = this.files.get(name);
    if (!inode) throw new FsError('ENOENT', `no such file ${name}`);
    assert.ok(length >= 0, 'negative truncate length');
    this.beforeMutation({ kind: 'truncate', file: name });
    if (length <= inode.current.length) inode.current = Buffer.from(inode.current.subarray(0, length));
    else inode.current = Buffer.concat([inode.current, Buffer.alloc(length - inode.current.length)]);
  }

  async readdir(dir: string): Promise<string[]> {
    this.checkAlive();
    const d = norm(dir);
    if (!this.dirs.has(d)) throw new FsError('ENOENT', `no such directory ${d}`);
    const names = new Set<string>();
    for (const f of this.files.keys()) if (path.dirname(f) === d) names.add(path.basename(f));
    for (const sub of this.dirs) if (sub !== d && path.dirname(sub) === d) names.add(path.basename(sub));
    return [...names].sort();
  }

  async mkdir(dir: string): Promise<void> {
    this.checkAlive();
    let d = norm(dir);
    const chain: string[] = [];
    while (!this.dirs.has(d)) {
      if (this.files.has(d)) throw new FsError('EEXIST', `${d} is a file`);
      chain.push(d);
      d = path.dirname(d);
    }
    for (const c of chain) this.dirs.add(c);
  }

  async exists(file: string): Promise<boolean> {
    this.checkAlive();
    const name = norm(file);
    return this.files.has(name) || this.dirs.has(name);
  }

  async syncDir(dir: string): Promise<void> {
    this.checkAlive();
    const d = norm(dir);
    if (!this.dirs.has(d)) throw new FsError('ENOENT', `no such directory ${d}`);
    this.beforeMutation({ kind: 'syncDir', file: d });
    for (const f of [...this.durableFiles.keys()]) if (path.dirname(f) === d) this.durableFiles.delete(f);
    for (const [f, inode] of this.files) if (path.dirname(f) === d) this.durableFiles.set(f, inode);
    this.counters.syncDirs++;
  }

  // ---- power loss ------------------------------------------------------------------------

  /** The durable namespace with, per file, its durable bytes and its current bytes. */
  private captureDurable(): FrozenImage {
    const files = new Map<string, { durable: Buffer; current: Buffer }>();
    for (const [name, inode] of this.durableFiles) {
      files.set(name, { durable: Buffer.from(inode.durable), current: Buffer.from(inode.current) });
    }
    return { files, dirs: new Set(this.dirs) };
  }

  /**
   * Power loss now (or at the point crashAfterOps froze). Returns the file system after reboot;
   * this instance is dead from now on. `random` picks prefix lengths in 'keep-random-prefix'.
   */
  crash(mode: CrashMode = 'drop-unsynced', random: () => number = Math.random): FaultFileSystem {
    const image = this.frozen ?? this.captureDurable();
    this.dead = 'crashed';
    return FaultFileSystem.reboot(image, mode, random, this.syncMethods);
  }

  /**
   * What crash() would return if the power went now, without killing this instance: lets one
   * workload run yield many crash points (each image is independent of this instance).
   */
  powerLossImage(mode: CrashMode = 'drop-unsynced', random: () => number = Math.random): FaultFileSystem {
    this.checkAlive();
    return FaultFileSystem.reboot(this.captureDurable(), mode, random, this.syncMethods);
  }

  private static reboot(image: FrozenImage, mode: CrashMode, random: () => number, syncMethods: boolean): FaultFileSystem {
    const next = new FaultFileSystem({ syncMethods });
    for (const d of image.dirs) next.dirs.add(d);
    for (const [name, { durable, current }] of image.files) {
      let bytes = durable;
      if (mode === 'keep-random-prefix' && current.length > durable.length && current.subarray(0, durable.length).equals(durable)) {
        const extra = Math.floor(random() * (current.length - durable.length + 1));
        bytes = Buffer.from(current.subarray(0, durable.length + extra));
      }
      const inode: Inode = { id: next.nextInode++, current: Buffer.from(bytes), durable: Buffer.from(bytes) };
      next.files.set(name, inode);
      next.durableFiles.set(name, inode);
    }
    return next;
  }

  // ---- test helpers (not part of FileSystem) ---------------------------------------------

  /** Current names of files (not directories) under dir, sorted. */
  listFiles(dir: string): string[] {
    const d = norm(dir);
    return [...this.files.keys()].filter((f) => path.dirname(f) === d).map((f) => path.basename(f)).sort();
  }

  /** Current bytes of a file (a copy). */
  peek(file: string): Buffer {
    const inode = this.files.get(norm(file));
    if (!inode) throw new FsError('ENOENT', `no such file ${norm(file)}`);
    return Buffer.from(inode.current);
  }

  /** Replaces a file's bytes, current and durable (for corruption tests between opens). */
  poke(file: string, bytes: Buffer): void {
    const inode = this.files.get(norm(file));
    if (!inode) throw new FsError('ENOENT', `no such file ${norm(file)}`);
    inode.current = Buffer.from(bytes);
    inode.durable = Buffer.from(bytes);
  }

  /** A deep copy of the current state, all of it durable (to rerun from one point many times). */
  clone(): FaultFileSystem {
    const next = new FaultFileSystem({ syncMethods: this.syncMethods });
    for (const d of this.dirs) next.dirs.add(d);
    for (const [name, inode] of this.files) {
      const copy: Inode = { id: next.nextInode++, current: Buffer.from(inode.current), durable: Buffer.from(inode.current) };
      next.files.set(name, copy);
      next.durableFiles.set(name, copy);
    }
    return next;
  }

  /** Bytes of unsynced data and names of entries not yet durable (for assertions in tests). */
  pendingSummary(): { unsyncedBytes: number; nonDurableEntries: string[]; durableButRemoved: string[] } {
    let unsyncedBytes = 0;
    for (const inode of new Set(this.files.values())) {
      if (!inode.current.equals(inode.durable)) unsyncedBytes += Math.abs(inode.current.length - inode.durable.length) || inode.current.length;
    }
    const nonDurableEntries = [...this.files].filter(([n, i]) => this.durableFiles.get(n) !== i).map(([n]) => n);
    const durableButRemoved = [...this.durableFiles.keys()].filter((n) => !this.files.has(n));
    return { unsyncedBytes, nonDurableEntries, durableButRemoved };
  }
}
