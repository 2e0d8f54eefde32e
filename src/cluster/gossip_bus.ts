/**
 * Glue between gossip and the cluster bus: the bus as a GossipTransport, and the bus handlers
 * that feed incoming gossip messages to a Gossiper. Call attachGossip() before bus.listen().
 */
import type { ClusterBus } from './bus.js';
import type { GossipTransport, Gossiper } from './gossip.js';
import { MessageType } from './message_types.js';

export function busGossipTransport(bus: ClusterBus): GossipTransport {
  return {
    request: (to, type, payload, timeoutMs) =>
      bus.request(to.id === undefined ? { host: to.host, port: to.busPort } : { host: to.host, port: to.busPort, id: to.id }, type, payload, timeoutMs),
  };
}

export function attachGossip(bus: ClusterBus, gossiper: Gossiper): void {
  for (const type of [MessageType.GOSSIP_SYNC, MessageType.GOSSIP_PING, MessageType.GOSSIP_PING_REQ] as const) {
    bus.handle(type, (payload) => gossiper.handle(type, payload));
  }
}
