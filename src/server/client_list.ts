/**
 * One CLIENT LIST / CLIENT INFO line, in Redis 7's field order (fields ringkv has no notion of,
 * such as pub/sub and MULTI, carry Redis's values for a plain client).
 */
import type { ClientHandle } from './services.js';

export function formatClientLine(h: ClientHandle, lib: { name: string; ver: string }, nowMs: number): string {
  const s = h.state;
  const age = Math.max(0, Math.floor((nowMs - s.createdAtMs) / 1000));
  const idle = Math.max(0, Math.floor((nowMs - s.lastCommandAtMs) / 1000));
  const qbuf = h.queryBufferBytes();
  const omem = h.outputBufferBytes();
  const cmd = s.lastCommand;
  return (
    `id=${s.id} addr=${s.addr} laddr=${s.laddr} name=${s.name} age=${age} idle=${idle} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 ` +
    `qbuf=${qbuf} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=${omem} tot-mem=${qbuf + omem} events=r ` +
    `cmd=${cmd} user=default redir=-1 resp=${s.protocol} lib-name=${lib.name} lib-ver=${lib.ver}` +
    ` read-quorum=${s.readQuorum ?? 'default'} write-quorum=${s.writeQuorum ?? 'default'}`
  );
}
