/**
 * Pure decisions of a cluster-wide SCAN (cluster_scan.ts): which replica answers which slots.
 *
 * The key space is ordered (slot, key) on every node alike, so a scan_cursor.ts cursor means the
 * same position whichever node receives it. Each slot is asked of exactly ONE replica of its
 * preference list, so no key is returned twice: this node when it is a replica (no remote call),
 * else the first replica seen up, else the first not yet failed during this call.
 */
import { SLOT_COUNT } from '../key_layout.js';
import { CURSOR_PREFIX_BYTES } from '../scan_cursor.js';

const PREFIX_SPACE = 1n << BigInt(CURSOR_PREFIX_BYTES * 8);

/** The slot a non-zero cursor points into (SLOT_COUNT or more: past the end). */
export function cursorSlot(cursor: bigint): number {
  if (cursor === 0n) return 0;
  const s = (cursor - 1n) / PREFIX_SPACE;
  return s >= BigInt(SLOT_COUNT) ? SLOT_COUNT : Number(s);
}

/** The cursor at the first key of `slot`; 0n (done) for SLOT_COUNT. */
export function slotStartCursor(slot: number): bigint {
  return slot >= SLOT_COUNT ? 0n : 1n + BigInt(slot) * PREFIX_SPACE;
}

/** The replica that answers for a slot with preference list `preflist`; undefined: none left. */
export function chooseReplica(
  preflist: readonly string[],
  self: string,
  isUp: (id: string) => boolean,
  failed: ReadonlySet<string>,
): string | undefined {
  if (preflist.includes(self) && !failed.has(self)) return self;
  return preflist.find((id) => !failed.has(id) && isUp(id)) ?? preflist.find((id) => !failed.has(id));
}

export interface ScanSegment {
  readonly firstSlot: number;
  /** Inclusive. */
  readonly lastSlot: number;
  /** undefined: no replica of firstSlot is left to ask. */
  readonly node: string | undefined;
}

/** The longest run of slots from `firstSlot` that `choose` sends to the same replica. */
export function planSegment(
  firstSlot: number,
  preflist: (slot: number) => readonly string[],
  choose: (preflist: readonly string[]) => string | undefined,
): ScanSegment {
  const node = choose(preflist(firstSlot));
  let last = firstSlot;
  if (node !== undefined) while (last + 1 < SLOT_COUNT && choose(preflist(last + 1)) === node) last++;
  return { firstSlot, lastSlot: last, node };
}
