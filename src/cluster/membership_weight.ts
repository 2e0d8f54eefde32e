/**
 * Run-time weight changes (issue 6): `CONFIG SET weight W` on a node rebalances its share of the
 * ring by streaming, exactly like a join or a leave.
 *
 *   CONFIG SET weight 2 (or a restart with a new `weight`)
 *     └─▶ WeightWatcher: own record gets targetWeight 2 (new incarnation, gossiped)
 *   every node: current ring uses `weight` (1), target ring uses `targetWeight` (2)
 *     └─▶ RingTransition(current, target): slots that change hands; gainers stream them
 *         (stream_manager.ts), writes go to current + pending replicas meanwhile
 *   the node whose weight changes, once its own gains are streamed and every gainer of a slot
 *   it loses has confirmed (STREAM_CONFIRM, as for a leave):
 *     └─▶ weight := targetWeight (gossiped): current ring = target ring; old owners sweep
 *
 * The configured `weight` is what the node wants; the gossiped `weight` is what the current ring
 * uses. CONFIG REWRITE persists the wanted weight; the membership file keeps the current one, so
 * a restart in the middle of a change resumes it (MembershipTable.create).
 *
 * Pure parts (ringMemberOf, weightCommitReady) are separate from the shell (WeightWatcher).
 */
import { reportsChanges } from '../config/config.js';
import type { RingMember } from '../coordinator/ring.js';
import type { RingTransition } from '../coordinator/ring_transition.js';
import type { LogFn } from '../server/logger.js';
import type { ConfigView } from '../server/types.js';
import { targetWeightOf, weightPending, type MemberInfo, type MembershipTable } from './membership.js';
import { leaveGainers } from './stream_plan.js';

/** How often the watcher compares the configured weight with the gossiped one, ms. */
export const WEIGHT_POLL_MS = 200;

/** A member as placement sees it in one view: the target ring places it at its target weight. */
export function ringMemberOf(m: MemberInfo, view: 'current' | 'target'): RingMember {
  return { id: m.id, weight: view === 'target' ? targetWeightOf(m) : m.weight, dc: m.dc, rack: m.rack, state: m.state };
}

/**
 * Whether `self`'s pending weight may become current: it is up with a change in progress, it has
 * streamed every slot it gains (`selfDone`), and every other node that gains a slot `self` loses
 * confirmed the target ring (`confirmed(id)`: it sent STREAM_CONFIRM with the target fingerprint).
 */
export function weightCommitReady(me: MemberInfo, tr: RingTransition, selfDone: boolean, confirmed: (id: string) => boolean): boolean {
  if (me.state !== 'up' || !weightPending(me) || !selfDone) return false;
  return leaveGainers(tr, me.id).every((id) => id === me.id || confirmed(id));
}

/**
 * What the own record must change to for the configured weight `wanted` (pure); null: nothing.
 * An up node starts (or redirects) a streamed change; a joining node is in no current ring, so
 * its weight changes at once; a leaving or left node keeps its weight.
 */
export function weightChangeFor(me: MemberInfo, wanted: number): Partial<Omit<MemberInfo, 'id'>> | null {
  if (me.state === 'joining') return me.weight === wanted && !weightPending(me) ? null : { weight: wanted, targetWeight: wanted };
  if (me.state !== 'up') return null;
  return targetWeightOf(me) === wanted ? null : { targetWeight: wanted };
}

/**
 * Follows the configured `weight` (CONFIG SET) into this node's gossiped record: at once, inside
 * the CONFIG SET, when the config reports its changes (so a `ringkv cluster wait` started right
 * after the reply sees the change in progress, not the ring before it), and every WEIGHT_POLL_MS
 * (a joining node that comes up, a config without change reports).
 */
export class WeightWatcher {
  readonly #timer: NodeJS.Timeout;
  readonly #unsubscribe: (() => void) | undefined;
  #warned = false;

  constructor(private readonly o: { config: ConfigView; table: MembershipTable; updateSelf: (change: Partial<Omit<MemberInfo, 'id'>>) => void; log: LogFn }) {
    this.#timer = setInterval(() => this.#check(), WEIGHT_POLL_MS);
    this.#timer.unref();
    this.#unsubscribe = reportsChanges(o.config)
      ? o.config.onChange((key) => {
          if (key === 'weight') this.#check();
        })
      : undefined;
  }

  #check(): void {
    const o = this.o;
    const me = o.table.self();
    const wanted = o.config.getNumber('weight');
    const change = weightChangeFor(me, wanted);
    if (change === null) {
      if (targetWeightOf(me) !== wanted && !this.#warned) {
        this.#warned = true;
        o.log('warn', `weight: this node is ${me.state}; weight ${wanted} is not applied`);
      }
      return;
    }
    this.#warned = false;
    o.updateSelf(change);
    o.log('info', `weight: ${me.weight} -> ${wanted}${me.state === 'up' ? ' (slots that change hands are streamed; the weight becomes current when they are)' : ''}`);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#unsubscribe?.();
  }
}
