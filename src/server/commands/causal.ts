import type { CommandSpec } from '../types.js';

export const causalCommands: readonly CommandSpec[] = [];
