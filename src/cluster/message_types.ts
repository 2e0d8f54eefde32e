/**
 * The registry of cluster bus message types (the frame's type byte, 0x10-0xff; 0x00-0x0f are the
 * bus's own, see frame.ts). One place so two subsystems never pick the same number. Ranges:
 *   0x10-0x1f membership and failure detection (gossip.ts)
 *   0x20-0x3f coordinator: replica reads and writes, forwarding (0x20-0x22, replica_codec.ts),
 *             REPLICA_PUT_BATCH (0x25, replica_codec.ts),
 *             whole-keyspace SCAN_RANGE / FLUSH_ALL (0x23-0x24, scan_range_codec.ts)
 *   0x40-0x4f hinted handoff: HINT_BATCH, HINT_QUERY (0x40-0x41, handoff_codec.ts)
 *   0x50-0x57 anti-entropy: AE_HASHES, AE_KEYS, AE_PUSH (0x50-0x52, anti_entropy_codec.ts)
 *   0x58-0x5f slot streaming (issue 6): STREAM_SCAN, STREAM_CONFIRM (0x58-0x59, stream_codec.ts)
 */
export const MessageType = {
  GOSSIP_SYNC: 0x10,
  GOSSIP_PING: 0x11,
  GOSSIP_PING_REQ: 0x12,
  // 0x20-0x22: REPLICA_PUT, REPLICA_GET, FORWARD_WRITE; 0x25 REPLICA_PUT_BATCH (replica_codec.ts ReplicaMessageType)
  SCAN_RANGE: 0x23,
  FLUSH_ALL: 0x24,
} as const;

export type GossipMessageType = (typeof MessageType)['GOSSIP_SYNC' | 'GOSSIP_PING' | 'GOSSIP_PING_REQ'];
