import type { CommandSpec } from '../types.js';

export const clusterCommands: readonly CommandSpec[] = [];
