/**
 * Counters for INFO: per command (INFO commandstats) and per server (INFO stats).
 * Plain mutable records, reset by CONFIG RESETSTAT.
 */
export interface CommandStat {
  calls: number;
  usec: number;
  rejectedCalls: number;
  failedCalls: number;
}

export class ServerStats {
  readonly commands = new Map<string, CommandStat>();
  totalConnectionsReceived = 0;
  totalCommandsProcessed = 0;
  rejectedConnections = 0;
  netInputBytes = 0;
  netOutputBytes = 0;
  /** Clients closed for exceeding client-output-buffer-limit / client-query-buffer-limit. */
  outputLimitDisconnections = 0;
  queryLimitDisconnections = 0;
  protocolErrors = 0;
  /** Socket writes (one per flushed batch of replies, corked when it spans several buffers). */
  outputWrites = 0;
  /** Errors replied, by prefix ('ERR', 'WRONGTYPE', ...), for INFO errorstats. */
  readonly errors = new Map<string, number>();

  command(fullName: string): CommandStat {
    let s = this.commands.get(fullName);
    if (s === undefined) {
      s = { calls: 0, usec: 0, rejectedCalls: 0, failedCalls: 0 };
      this.commands.set(fullName, s);
    }
    return s;
  }

  countError(message: string): void {
    const sp = message.indexOf(' ');
    const prefix = sp < 0 ? message : message.slice(0, sp);
    this.errors.set(prefix, (this.errors.get(prefix) ?? 0) + 1);
  }

  reset(): void {
    this.commands.clear();
    this.errors.clear();
    this.totalConnectionsReceived = 0;
    this.totalCommandsProcessed = 0;
    this.rejectedConnections = 0;
    this.netInputBytes = 0;
    this.netOutputBytes = 0;
    this.outputLimitDisconnections = 0;
    this.queryLimitDisconnections = 0;
    this.protocolErrors = 0;
    this.outputWrites = 0;
  }
}
