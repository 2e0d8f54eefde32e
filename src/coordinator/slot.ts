/**
 * Key -> slot, exactly as Redis Cluster: slot = CRC16(key) mod 16384, where CRC16 is the
 * XMODEM variant (polynomial 0x1021, initial value 0, no reflection, no final xor), and only the
 * hash tag is hashed when the key has one: the bytes between the first '{' and the first '}'
 * after it, if there is at least one byte between them. Otherwise the whole key is hashed.
 *
 *   "{user1000}.following" -> "user1000"   "foo{}{bar}" -> whole key
 *   "foo{{bar}}zap"        -> "{bar"       "foo{bar}{zap}" -> "bar"
 *
 * Being Redis's slots, cluster-aware clients compute the same slot and route keys themselves.
 */

/** Number of hash slots (Redis Cluster's). */
export const SLOT_COUNT = 16384;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

const CRC16_TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16/XMODEM of bytes [start, end) of `buf`. */
export function crc16(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xff00) ^ (CRC16_TABLE[((crc >>> 8) ^ (buf[i] as number)) & 0xff] as number);
  }
  return crc;
}

/** The Redis Cluster slot of a key, in [0, SLOT_COUNT). */
export function keySlot(key: Uint8Array): number {
  const open = indexOfByte(key, OPEN_BRACE, 0);
  if (open !== -1) {
    const close = indexOfByte(key, CLOSE_BRACE, open + 1);
    if (close > open + 1) return crc16(key, open + 1, close) & (SLOT_COUNT - 1);
  }
  return crc16(key) & (SLOT_COUNT - 1);
}

/** Keys up to this long are searched for braces by a loop (a native indexOf call costs more). */
const LOOP_SEARCH_MAX_BYTES = 64;

/** key.indexOf(byte, from), by a plain loop for short keys. */
function indexOfByte(key: Uint8Array, byte: number, from: number): number {
  const n = key.length;
  if (n > LOOP_SEARCH_MAX_BYTES) return key.indexOf(byte, from);
  for (let i = from; i < n; i++) if (key[i] === byte) return i;
  return -1;
}
